//go:build linux

package probes

import (
	"cmp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTree starts `sh -c 'sleep 30 & sleep 30 & wait'`: a shell with two
// sleeping children. The tree is taken down when the test ends: the sleeps
// are killed first so that the shell reaps them, then the shell.
func startTree(t *testing.T) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep")
	}
	cmd := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := SampleProcess(cmd.Process.Pid); err == nil {
			for _, c := range s.Children {
				syscall.Kill(c.PID, syscall.SIGKILL)
			}
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd
}

func sleepsOf(s *ProcSample, parent int) []Child {
	var out []Child
	for _, c := range s.Children {
		if c.Comm == "sleep" && c.PPID == parent {
			out = append(out, c)
		}
	}
	return out
}

func TestChildrenTree(t *testing.T) {
	sh := startTree(t)
	shPID := sh.Process.Pid
	s := waitSample(t, shPID, func(s *ProcSample) bool { return len(sleepsOf(s, shPID)) == 2 })
	if len(s.Children) != 2 {
		t.Errorf("shell's children = %+v, want the two sleeps only", s.Children)
	}
	for _, c := range s.Children {
		if c.Zombie || c.State == "Z" || c.State == "" {
			t.Errorf("sleeping child %+v", c)
		}
	}
	if m := MetricMap(s.Metrics()); m["children"] != 2 || m["zombies"] != 0 {
		t.Errorf("metrics children %v zombies %v, want 2 and 0", m["children"], m["zombies"])
	}

	// From the test process, the shell is a child and the sleeps are
	// grandchildren, listed after it.
	self := sampleSelf(t)
	shAt := slices.IndexFunc(self.Children, func(c Child) bool { return c.PID == shPID })
	if shAt < 0 || self.Children[shAt].PPID != os.Getpid() || self.Children[shAt].Comm != "sh" {
		t.Fatalf("test process children = %+v, want sh %d", self.Children, shPID)
	}
	for _, c := range sleepsOf(self, shPID) {
		if at := slices.Index(self.Children, c); at < shAt {
			t.Errorf("grandchild %+v listed before its parent", c)
		}
	}
	if n := len(sleepsOf(self, shPID)); n != 2 {
		t.Errorf("test process sees %d grandchildren, want 2", n)
	}
	// The same processes; their run state may change between two reads.
	sameProcs := func(a, b Child) bool {
		return a.PID == b.PID && a.PPID == b.PPID && a.Comm == b.Comm && a.Start == b.Start
	}
	if d, err := Descendants(shPID); err != nil || !slices.EqualFunc(d, s.Children, sameProcs) {
		t.Errorf("Descendants(sh) = %+v, %v; sample's children %+v", d, err, s.Children)
	}
	if _, err := Descendants(0); err == nil {
		t.Error("Descendants(0) succeeded")
	}
}

// TestChildrenScanMatchesChildrenFiles checks the fallback for kernels
// without /proc/<pid>/task/<tid>/children against the children files, on a
// real tree.
func TestChildrenScanMatchesChildrenFiles(t *testing.T) {
	if !haveChildrenFiles() {
		t.Skip("this kernel has no children files to compare with")
	}
	sh := startTree(t)
	// Both children have exec'd sleep: a fork not yet exec'd changes its name
	// between the two reads.
	waitSample(t, sh.Process.Pid, func(s *ProcSample) bool { return len(sleepsOf(s, sh.Process.Pid)) == 2 })

	s := scratchPool.New().(*scratch)
	pidDir, err := openat(atFDCWD, appendProcPath(nil, os.Getpid()), dirFlags)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pidDir)
	byFiles, err := s.descendantsByChildren(pidDir, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	byScan, err := s.descendantsByScan(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	key := func(cs []Child) []string {
		var out []string
		for _, c := range cs {
			out = append(out, strconv.Itoa(c.PID)+"<"+strconv.Itoa(c.PPID)+" "+c.Comm)
		}
		slices.SortFunc(out, cmp.Compare)
		return out
	}
	if a, b := key(byFiles), key(byScan); !slices.Equal(a, b) || len(a) < 3 {
		t.Errorf("children files give %v, scan gives %v", a, b)
	}
}

// TestZombieGrandchild: a helper starts a child that exits at once and does
// not reap it; the sample must show the zombie.
func TestZombieGrandchild(t *testing.T) {
	h, rest := startHelperMode(t, "zombie")
	zpid, err := strconv.Atoi(rest)
	if err != nil {
		t.Fatalf("helper said %q", rest)
	}
	s := waitSample(t, h.pid(), func(s *ProcSample) bool {
		return len(s.Children) == 1 && s.Children[0].Zombie
	})
	if c := s.Children[0]; c.PID != zpid || c.PPID != h.pid() || c.State != "Z" {
		t.Errorf("zombie = %+v, want pid %d ppid %d state Z", c, zpid, h.pid())
	}
	if m := MetricMap(s.Metrics()); m["zombies"] != 1 || m["children"] != 1 {
		t.Errorf("metrics children %v zombies %v, want 1 and 1", m["children"], m["zombies"])
	}
	self := sampleSelf(t)
	if !slices.ContainsFunc(self.Children, func(c Child) bool { return c.PID == zpid && c.Zombie }) {
		t.Errorf("test process does not see its zombie grandchild %d: %+v", zpid, self.Children)
	}
	h.stop(t) // the helper reaps it and exits
}

// statChild reads pid's stat file into a Child, as a sample would.
func statChild(t *testing.T, pid int) Child {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	st, ok := parseStat(b)
	if !ok || st.start == 0 {
		t.Fatalf("/proc/%d/stat: parsed %+v, ok %v: want a start time", pid, st, ok)
	}
	return childOf(st)
}

// TestRunning checks Running, the liveness test that decides which
// descendants were left behind: a process that execs another program still
// runs; a zombie, a reaped process and a pid reused by another process do not.
func TestRunning(t *testing.T) {
	t.Parallel()
	self := statChild(t, os.Getpid())
	tests := []struct {
		name string
		c    Child
		want bool
	}{
		{"itself", self, true},
		{"after an exec (another name, same start)", Child{PID: self.PID, Comm: self.Comm + "-exec", Start: self.Start}, true},
		{"reused pid (another start)", Child{PID: self.PID, Comm: self.Comm, Start: self.Start + 1}, false},
		{"no start time, same name", Child{PID: self.PID, Comm: self.Comm}, true},
		{"no start time, another name", Child{PID: self.PID, Comm: self.Comm + "-not"}, false},
	}
	for _, tt := range tests {
		if got := Running(tt.c); got != tt.want {
			t.Errorf("%s: Running(%+v) = %v, want %v", tt.name, tt.c, got, tt.want)
		}
	}

	c := exec.Command("sh", "-c", "exit 0")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	child := statChild(t, c.Process.Pid)
	// Not waited for yet: it becomes a zombie when it exits.
	deadline := time.Now().Add(10 * time.Second)
	for Running(child) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running after 10s", child.PID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := statChild(t, child.PID); !st.Zombie {
		t.Errorf("pid %d: state %q, want a zombie", child.PID, st.State)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if Running(child) {
		t.Errorf("Running(%+v) = true after it was reaped", child)
	}
}

func TestCheckProcess(t *testing.T) {
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pid     int
		wantErr string
		comm    string
	}{
		{"this process", os.Getpid(), "", filepath.Base(os.Args[0])},
		{"a child", sleep.Process.Pid, "", "sleep"},
		{"an exited process", gone.Process.Pid, "no process", "?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckProcess(tt.pid)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CheckProcess(%d) = %v, want an error with %q", tt.pid, err, tt.wantErr)
			}
			// The kernel keeps 15 bytes of the name.
			if got, want := ProcessName(tt.pid), tt.comm[:min(len(tt.comm), 15)]; got != want {
				t.Errorf("ProcessName(%d) = %q, want %q", tt.pid, got, want)
			}
		})
	}
}
