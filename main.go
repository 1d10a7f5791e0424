// Command leakcheck finds resource leaks in long-running daemons.
package main

import "github.com/leakcheck/leakcheck/cmd"

func main() {
	cmd.Execute()
}
