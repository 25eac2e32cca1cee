package sparkconnect

import (
	"testing"

	"go.uber.org/goleak"
)

// Sessions own gRPC connections and their goroutines; closing them leaves none.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
