package report

import (
	"testing"

	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
