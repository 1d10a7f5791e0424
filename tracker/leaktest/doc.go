// Package leaktest fails a test that leaves goroutines, descriptors or
// tracked records behind.
package leaktest
