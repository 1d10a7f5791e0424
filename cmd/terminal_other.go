//go:build !linux

package cmd

func terminalWidth(int) int { return 0 }
