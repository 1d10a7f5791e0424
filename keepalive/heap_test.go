package keepalive

import (
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

type workerHeap struct {
	tasks map[int]string
	wheel *Wheel // a wheel in a heap shows the walks nothing of the kernel
}

type friendHeap struct {
	name   string
	friend *friendHeap
}

func TestHeapChecks(t *testing.T) {
	clean(t)
	reg := tracker.New(tracker.WithStacks(tracker.StacksOff), tracker.WithCycleCheck(true))
	k := NewKernel(WithRegistry(reg), WithHeapChecks(true))
	a, _ := pipePair(t)
	worker, err := k.Spawn(Spec{Name: "worker", Heap: &workerHeap{tasks: map[int]string{}}, Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			c.RefcountIncrement("test")
			w, err := c.NewWheel(a, WheelConfig{Input: "in"})
			must(t, err)
			HeapOf[*workerHeap](c).wheel = w
		},
		"add": func(c *Context) {
			h := HeapOf[*workerHeap](c)
			h.tasks[len(h.tasks)] = "x"
		},
		"done": func(c *Context) {
			HeapOf[*workerHeap](c).wheel.Close()
			c.RefcountDecrement("test")
		},
	}})
	must(t, err)
	// Two sessions whose heaps refer to each other, as the FAQ warns.
	_, err = k.Spawn(Spec{Name: "alice", Heap: &friendHeap{name: "alice"}, Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			alice := HeapOf[*friendHeap](c)
			c.Spawn(Spec{Name: "bob", Heap: &friendHeap{name: "bob", friend: alice}, Handlers: map[string]Handler{
				EvStart: func(c *Context) { alice.friend = HeapOf[*friendHeap](c) },
			}})
		},
	}})
	must(t, err)

	gauge := func() (float64, bool) {
		for _, g := range reg.Snapshot().Gauges {
			if strings.Contains(g.Name, `"worker"`) && strings.HasSuffix(g.Name, ".tasks") && len(g.Points) > 0 {
				return g.Points[len(g.Points)-1].Value, true
			}
		}
		return 0, false
	}
	go func() {
		for range 3 {
			k.Post(worker, "add")
		}
		// The tracker's sampler asks the kernel to sample each heap on the
		// loop; poll until the sample of the 3 tasks is in.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			reg.SampleGauges()
			if v, ok := gauge(); ok && v == 3 {
				break
			}
		}
		k.Post(worker, "done")
	}()
	mustRun(t, k)
	if v, ok := gauge(); !ok || v != 3 {
		var names []string
		for _, g := range reg.Snapshot().Gauges {
			names = append(names, g.Name)
		}
		t.Errorf("gauge of worker's tasks: %v, %v (gauges %q)", v, ok, names)
	}
	var cycles []string
	for _, c := range reg.Snapshot().Cycles {
		cycles = append(cycles, c.String())
	}
	if len(cycles) != 1 || !strings.Contains(cycles[0], "friendHeap") {
		t.Errorf("cycles found at stop: %q, want the one between alice's and bob's heaps", cycles)
	}
	for _, c := range cycles {
		if strings.Contains(c, "Kernel") {
			t.Errorf("cycle through the kernel: %s", c)
		}
	}
}
