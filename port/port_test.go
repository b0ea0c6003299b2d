package port_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/port"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		d    port.Desc
		name string
		err  error
		msg  string
	}{
		{port.Desc{ID: 0, Driver: "null"}, "null0", nil, ""},
		{port.Desc{ID: 1, Driver: "null", PktBytes: 1500, RatePPS: 1000}, "null1", nil, ""},
		{port.Desc{ID: 2, Driver: "loop"}, "loop2", nil, ""},
		{port.Desc{ID: 0, Driver: "afpacket", Iface: "eth0"}, "", port.ErrNotBuilt, "driver afpacket not built yet"},
		{port.Desc{ID: 0, Driver: "pcap", Path: "x.pcap"}, "", port.ErrNotBuilt, "driver pcap not built yet"},
		{port.Desc{ID: 0, Driver: "dpdk"}, "", port.ErrNotBuilt, "driver dpdk not built yet"},
		{port.Desc{ID: 0, Driver: "carrier-pigeon"}, "", port.ErrUnknownDriver, `driver "carrier-pigeon": unknown driver`},
		{port.Desc{ID: 0, Driver: "null", PktBytes: 10}, "", nil, "null port 0: frame size 10 outside 60..9600"},
	}
	for _, tt := range tests {
		p, err := port.Open(tt.d)
		if tt.msg != "" {
			if err == nil || err.Error() != tt.msg || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Errorf("Open(%+v) = %v, want %q", tt.d, err, tt.msg)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%+v): %v", tt.d, err)
			continue
		}
		if p.Name() != tt.name || p.ID() != tt.d.ID {
			t.Errorf("Open(%+v): name %q, id %d", tt.d, p.Name(), p.ID())
		}
		p.Close()
	}
}

var registered atomic.Int32 // the driver table is global: each run (-count) registers a new name

func TestRegister(t *testing.T) {
	name := "test-fake-" + itoa(int(registered.Add(1)))
	port.Register(name, func(d port.Desc) (port.Port, error) { return port.NewLoop(d.ID, 4) })
	p, err := port.Open(port.Desc{ID: 9, Driver: name})
	if err != nil || p.Name() != "loop9" {
		t.Fatalf("Open registered driver: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("second Register of a name did not panic")
		}
	}()
	port.Register(name, nil)
}

func monotonicSyscall() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func TestNanotimeIsClockMonotonic(t *testing.T) {
	a := port.Nanotime()
	m := monotonicSyscall()
	b := port.Nanotime()
	if m < a-int64(time.Millisecond) || m > b+int64(time.Millisecond) {
		t.Fatalf("Nanotime %d..%d, CLOCK_MONOTONIC %d", a, b, m)
	}
	if b < a {
		t.Fatal("Nanotime went backwards")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
