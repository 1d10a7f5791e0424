package keepalive_test

import (
	"context"
	"fmt"
	"time"

	"github.com/leakcheck/leakcheck/keepalive"
)

func Example() {
	k := keepalive.NewKernel()
	say := func(c *keepalive.Context) { fmt.Println(c.Session.Name(), c.Event, c.Args) }
	k.Spawn(keepalive.Spec{Name: "parent", Handlers: map[string]keepalive.Handler{
		keepalive.EvStart: func(c *keepalive.Context) {
			say(c)
			c.Spawn(keepalive.Spec{Name: "child", Heap: new(int), Handlers: map[string]keepalive.Handler{
				keepalive.EvStart: func(c *keepalive.Context) {
					say(c)
					c.Delay("tick", time.Millisecond)
					c.Return("ready")
				},
				"tick": func(c *keepalive.Context) {
					n := keepalive.HeapOf[*int](c)
					*n++
					fmt.Println("tick", *n)
					if *n < 2 {
						c.Delay("tick", time.Millisecond)
					}
				},
				keepalive.EvStop: say,
			}})
		},
		keepalive.EvChild: func(c *keepalive.Context) {
			fmt.Println("parent _child", c.Arg(0), c.Arg(1).(*keepalive.Session).Name(), c.Arg(2))
		},
		keepalive.EvStop: say,
	}})
	report, err := k.Run(context.Background())
	fmt.Println(report.Len(), "leftovers,", err)
	// Output:
	// parent _start []
	// child _start []
	// parent _child create child ready
	// tick 1
	// tick 2
	// child _stop []
	// parent _child lose child <nil>
	// parent _stop []
	// 0 leftovers, <nil>
}
