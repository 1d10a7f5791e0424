// Package leaktest fails a test that leaves something behind: goroutines it
// started, descriptors it opened, or records it created in a tracker
// registry. It is leakcheck's gate inside go test, used the way goleak is:
//
//	func TestMain(m *testing.M) {
//		leaktest.VerifyTestMain(m)
//	}
//
//	func TestServer(t *testing.T) {
//		t.Parallel()
//		leaktest.VerifyNone(t)
//		...
//	}
//
// VerifyNone notes the state when the test starts and checks it when the
// test ends (from t.Cleanup, after the test's own cleanups). VerifyTestMain
// checks what the package's tests left behind as a whole, and exits non-zero
// with a report if they leaked.
//
// # Which test leaked
//
// VerifyNone puts a pprof label on the test's goroutine: "leaktest" is the
// test's name and a number. A goroutine inherits the labels of the goroutine
// that starts it, so every goroutine the test starts, directly or through
// others, carries the label, and the goroutine profile reports it. When the
// test ends, the goroutines with its label are its leaks, whatever other tests
// run in parallel: each test is checked on its own, and a clean test is never
// blamed for a sibling's goroutine. The test's goroutine gets its labels back
// when the check is done. The label also shows in profiles taken during tests
// (go tool pprof -tagfocus leaktest=...).
//
// Tracked records name their creator. While a check is in force, the
// registry's creator func (tracker.Registry.SetCreatorFunc) names the test
// whose goroutine tracks a record: the test's own goroutine, one started from
// it, or one whose chain of creators, as far as they still run, leads to it.
// Records live before the test started are never blamed on it. The registry
// also captures every acquisition stack while a check is in force, so a
// report says where each leaked record was created.
//
// Descriptors cannot be tied to a goroutine, and neither can goroutines that
// lost the test's label (pprof.Do or SetGoroutineLabels with a context that
// does not carry it replaces the labels). Such a leftover is blamed on the
// test only if nothing else ran while the test did: no other test checked
// by VerifyNone, and no other test seen running when the check started or
// ended. Otherwise the test logs it and leaves it to the enclosing check:
// VerifyNone on a parent test, for which its own subtests do not count as
// others, or VerifyTestMain. That check reports it if it is still there,
// and says which tests ran at the same time. So a clean test is not failed by
// a descriptor a parallel sibling opened; but a test that runs without
// VerifyNone and that neither look catches running is not seen, so call
// VerifyNone in every test that runs in parallel. Call t.Parallel before
// VerifyNone: otherwise the time the test waits for its turn counts as time
// it ran alongside the sequential tests.
//
// # Waiting
//
// A goroutine that is exiting as the test returns is not a leak. The check
// looks once, and while something is left it looks again after 1 ms, 2 ms,
// 4 ms and so on, until nothing is left or MaxWait has passed
// (DefaultMaxWait, 100 ms). A clean test pays for one look; a leak is
// reported after MaxWait.
//
// # Reports
//
// A failing test gets one error that lists every leak: goroutines with their
// count, wait state, creator ("created by") and stack, identical goroutines as
// one entry; descriptors with their number and target (a path, or a form
// such as "socket:[12345]"); records with their kind, label, owner, creator,
// age and acquisition stack. Goroutines are read from the goroutine profile
// in its debug=1 text form, which gives stacks and labels. Goroutine ids,
// wait states and creators are not in the profile: they come from a text
// traceback of all goroutines, read when the test starts (for the ids, to
// tell which goroutines without the test's label are new) and at the end
// only if the runtime's count of goroutines created (runtime/metrics) has
// moved since: a test during which the process started no goroutine is
// clean by that count alone. Of the start's profile, only the test
// goroutine's record is parsed, unless something is left to judge. The
// parser skips what it does not understand ("...N frames elided...", labels
// printed under GODEBUG=tracebacklabels=1, forms yet to come) and is fuzzed.
// Descriptors are listed from /proc/self/fd; a socket or a pipe seen at the
// last listing costs one fstat, which shows whether its inode, and so its
// link ("socket:[inode]"), is the same; other links are read every time.
//
// Leaks are reported even when the test has already failed, since a failing
// test that also leaks should say so; SkipIfFailed turns that off.
//
// Always ignored: the goroutine running the check, a test's goroutine whose
// test function has returned, the os/signal loop that signal.Notify starts
// once per process, runtime/trace's reader, and the descriptors of the
// runtime's network poller; by VerifyTestMain, the files of -test.cpuprofile
// and -test.trace, which the testing package never closes.
//
// # Moving from goleak
//
// Replace defer goleak.VerifyNone(t) with leaktest.VerifyNone(t) at the start
// of the test, and goleak.VerifyTestMain(m) with leaktest.VerifyTestMain(m).
// IgnoreTopFunction, IgnoreAnyFunction and IgnoreCurrent keep their meaning;
// IgnoreCreatedBy matches the function of a "created by" line. goleak's
// options cannot be converted: goleak.Option is an interface with an
// unexported method, so what an option does cannot be read from outside.
//
// # State
//
// The tests of one binary share one process, its goroutines, descriptors and
// registries, so checks cannot be independent values: the package keeps a
// single process-wide coordinator, its only package-level state. It knows
// which checks are running (to tell when tests overlap), which goroutine works
// for which test (for the creator func), how many checks use each registry
// (the creator func and stack capture are installed by the first and removed
// by the last, which restores the registry's stack mode), and which leftovers
// a check has judged, so an enclosing check does not report them again.
package leaktest
