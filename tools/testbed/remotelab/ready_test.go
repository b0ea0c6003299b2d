package remotelab

import "testing"

func TestArbiterReadyFromLog(t *testing.T) {
	const (
		up      = "05:19:19.164 WRN arbiter chain=c0 component=manager detail= epoch=1 event=member-up member=b\n"
		ready1  = "05:19:19.220 WRN arbiter chain=c0 component=manager detail= epoch=1 event=standby-ready member=b\n"
		down    = "05:19:19.229 WRN arbiter chain=c0 component=manager detail= epoch=1 event=standby-down member=b\n"
		ready7  = "05:19:20.101 WRN arbiter chain=c0 component=manager detail= epoch=7 event=standby-ready member=b\n"
		pdown   = "05:19:20.050 WRN arbiter chain=c0 component=manager detail=\"lease bound in 6.7ms\" epoch=7 event=primary-down member=b\n"
		other   = "05:19:20.102 WRN arbiter chain=c0 component=manager detail= epoch=7 event=standby-down member=a\n"
		promote = "05:19:20.057 WRN arbiter chain=c0 component=manager detail=failover epoch=8 event=promoting member=b\n"
	)
	for _, c := range []struct {
		name, log string
		epoch     uint64
		want      bool
	}{
		{"up then ready", up + ready1, 1, true},
		{"ready then up", ready1 + up, 1, true},
		{"ready at another epoch", up + ready1, 7, false},
		{"down after ready", up + ready1 + down, 1, false},
		{"down, up, not ready again", up + ready1 + down + up, 1, false},
		{"down, up, ready again", up + ready1 + down + up + ready7, 7, true},
		{"down, ready, not up yet", up + ready1 + down + ready7, 7, false},
		{"another member's event", up + ready7 + other, 7, true},
		{"primary down", up + ready7 + pdown, 7, false},
		{"promoted since", up + ready7 + promote, 7, false},
		{"nothing", "", 1, false},
	} {
		if got := arbiterReadyIn(c.log, "b", c.epoch); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
