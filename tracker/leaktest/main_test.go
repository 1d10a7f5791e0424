package leaktest

import "testing"

// The package's own tests are checked by the package.
func TestMain(m *testing.M) {
	VerifyTestMain(m)
}
