package arbiter

import (
	"fmt"
	"time"
)

// Profile is a BFD timing profile with the lease that goes with it
// (docs/arbiter.md, "Timing").
type Profile struct {
	Name string
	// TxInterval and RxInterval are BFD's Desired Min TX and Required Min
	// RX once Up; DetectMult its detection multiplier.
	TxInterval, RxInterval time.Duration
	DetectMult             uint8
	// Lease is the lease D the arbiter grants with this profile.
	Lease time.Duration
}

// Profiles (RESILIENCY.md, "Failure detection": defaults 1 ms × 3, a loaded
// profile 2 ms × 3).
var (
	ProfileDefault = Profile{Name: "default", TxInterval: time.Millisecond, RxInterval: time.Millisecond, DetectMult: 3, Lease: DefaultLease}
	ProfileLoaded  = Profile{Name: "loaded", TxInterval: 2 * time.Millisecond, RxInterval: 2 * time.Millisecond, DetectMult: 3, Lease: LoadedLease}
	// ProfileShared is for managers on oversubscribed machines (the 2-vCPU
	// development VM: processes there stall for milliseconds, and the
	// faster profiles declare live members down about once a second):
	// 10 ms × 5, a 100 ms lease. Not a RESILIENCY.md profile.
	ProfileShared = Profile{Name: "shared", TxInterval: 10 * time.Millisecond, RxInterval: 10 * time.Millisecond, DetectMult: 5, Lease: 100 * time.Millisecond}
)

// ProfileNamed returns the profile called name ("default" or "loaded").
func ProfileNamed(name string) (Profile, error) {
	switch name {
	case "", ProfileDefault.Name:
		return ProfileDefault, nil
	case ProfileLoaded.Name:
		return ProfileLoaded, nil
	case ProfileShared.Name:
		return ProfileShared, nil
	}
	return Profile{}, fmt.Errorf("arbiter profile %q: not \"default\", \"loaded\" or \"shared\"", name)
}

// Detect returns the detection time: DetectMult × the larger interval.
func (p Profile) Detect() time.Duration {
	return time.Duration(p.DetectMult) * max(p.TxInterval, p.RxInterval)
}
