package manager

import (
	"errors"
	"flag"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
)

// registrySeed replays TestRegistryRandomJoinLeave. It is not called -seed so
// that it cannot collide with another test file's flag in this package.
var registrySeed = flag.Uint64("registry.seed", 0, "seed for TestRegistryRandomJoinLeave (0: time-based)")

// mustStart starts an NF and fails the test unless it is accepted.
func mustStart(t *testing.T, r *Registry, req StartReq) InstanceID {
	t.Helper()
	id, st := r.Start(req)
	if st != ctlmsg.StatusStarting || id == 0 {
		t.Fatalf("Start(%+v) = %d, %v; want an ID and NF_STARTING", req, id, st)
	}
	return id
}

// mustRun starts an NF and makes it ready.
func mustRun(t *testing.T, r *Registry, req StartReq) InstanceID {
	t.Helper()
	id := mustStart(t, r, req)
	if err := r.Ready(id); err != nil {
		t.Fatalf("Ready(%d): %v", id, err)
	}
	return id
}

// fill starts n NFs spread over services 1..31, so the per-service limit never
// interferes, and makes them ready when run is set.
func fill(t *testing.T, r *Registry, n int, run bool) []InstanceID {
	t.Helper()
	var ids []InstanceID
	for i := range n {
		req := StartReq{Service: ServiceID(i%31 + 1)}
		if run {
			ids = append(ids, mustRun(t, r, req))
		} else {
			ids = append(ids, mustStart(t, r, req))
		}
	}
	return ids
}

func TestRegistryAllocatesRoundRobin(t *testing.T) {
	var r Registry
	ids := fill(t, &r, 3, true)
	if !slices.Equal(ids, []InstanceID{1, 2, 3}) {
		t.Fatalf("first IDs = %v, want [1 2 3]", ids)
	}
	if err := r.Stop(1); err != nil {
		t.Fatal(err)
	}
	// ONVM-COMPAT.md §2.8: a freed ID is not reused until the scan wraps.
	if id := mustStart(t, &r, StartReq{Service: 1}); id != 4 {
		t.Fatalf("after freeing 1, next ID = %d, want 4", id)
	}
}

func TestRegistryReusesFreedIDAfterWrap(t *testing.T) {
	var r Registry
	fill(t, &r, ctlmsg.MaxNFs-1, true)
	for _, id := range []InstanceID{90, 5} {
		if err := r.Stop(id); err != nil {
			t.Fatal(err)
		}
	}
	// The cursor is past 127, so the scan wraps to 1 and finds 5 before 90.
	if id := mustStart(t, &r, StartReq{Service: 1}); id != 5 {
		t.Fatalf("ID = %d, want 5", id)
	}
	if id := mustStart(t, &r, StartReq{Service: 1}); id != 90 {
		t.Fatalf("ID = %d, want 90", id)
	}
}

func TestRegistryNoIDsWhenFull(t *testing.T) {
	var r Registry
	fill(t, &r, ctlmsg.MaxNFs-1, false)
	if id, st := r.Start(StartReq{Service: 1}); st != ctlmsg.StatusNoIDs || id != 0 {
		t.Fatalf("Start on a full registry = %d, %v; want 0, NF_NO_IDS", id, st)
	}
}

func TestRegistryStartingSlotIsNotFree(t *testing.T) {
	// ONVM treats a STARTING slot as free ([quirk] §2.8); we do not.
	var r Registry
	ids := fill(t, &r, ctlmsg.MaxNFs-1, false) // all STARTING, cursor past 127
	if err := r.Stop(ids[99]); err != nil {
		t.Fatal(err)
	}
	// ONVM would wrap to 1 and hand out 1, which is still STARTING.
	if id := mustStart(t, &r, StartReq{Service: 1}); id != ids[99] {
		t.Fatalf("ID = %d, want the one freed slot %d", id, ids[99])
	}
	if id, st := r.Start(StartReq{Service: 1}); st != ctlmsg.StatusNoIDs {
		t.Fatalf("Start with every slot STARTING = %d, %v; want NF_NO_IDS", id, st)
	}
}

func TestRegistryExplicitIDConflictsWithStartingAndRunning(t *testing.T) {
	var r Registry
	starting := mustStart(t, &r, StartReq{Service: 1, Instance: 10})
	running := mustRun(t, &r, StartReq{Service: 1, Instance: 11})
	for _, id := range []InstanceID{starting, running} {
		if got, st := r.Start(StartReq{Service: 2, Instance: id}); st != ctlmsg.StatusIDConflict || got != 0 {
			t.Errorf("Start(-n %d) = %d, %v; want 0, NF_ID_CONFLICT", id, got, st)
		}
	}
}

func TestRegistryExplicitIDHonoured(t *testing.T) {
	var r Registry
	if id := mustStart(t, &r, StartReq{Service: 1, Instance: 77}); id != 77 {
		t.Fatalf("ID = %d, want 77", id)
	}
	// An explicit ID leaves the round-robin cursor alone (ONVM: -n bypasses
	// onvm_nf_next_instance_id).
	if id := mustStart(t, &r, StartReq{Service: 1}); id != 1 {
		t.Fatalf("next automatic ID = %d, want 1", id)
	}
	if err := r.Stop(77); err != nil {
		t.Fatal(err)
	}
	if id := mustStart(t, &r, StartReq{Service: 1, Instance: 77}); id != 77 {
		t.Fatalf("re-registering a freed explicit ID: got %d", id)
	}
}

func TestRegistryRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, r *Registry)
		req   StartReq
		want  ctlmsg.Status
	}{
		{"explicit ID 128", nil, StartReq{Service: 1, Instance: ctlmsg.MaxNFs}, ctlmsg.StatusNoIDs},
		{"explicit ID 0xFFFF", nil, StartReq{Service: 1, Instance: 0xFFFF}, ctlmsg.StatusNoIDs},
		{"service 32", nil, StartReq{Service: ctlmsg.MaxServices}, ctlmsg.StatusServiceMax},
		{"service 0", nil, StartReq{Service: 0}, ctlmsg.StatusServiceMax},
		{"service 65535", nil, StartReq{Service: 0xFFFF}, ctlmsg.StatusServiceMax},
		{
			"33rd NF of a service",
			func(t *testing.T, r *Registry) {
				for range ctlmsg.MaxNFsPerService {
					mustRun(t, r, StartReq{Service: 5})
				}
			},
			StartReq{Service: 5}, ctlmsg.StatusServiceCountMax,
		},
		{
			"starting NFs count against the service limit",
			func(t *testing.T, r *Registry) {
				for range ctlmsg.MaxNFsPerService {
					mustStart(t, r, StartReq{Service: 5})
				}
			},
			StartReq{Service: 5}, ctlmsg.StatusServiceCountMax,
		},
		// ONVM's order: NO_IDS, SERVICE_MAX, SERVICE_COUNT_MAX, ID_CONFLICT.
		{
			"no IDs before bad service",
			func(t *testing.T, r *Registry) { fill(t, r, ctlmsg.MaxNFs-1, false) },
			StartReq{Service: 40}, ctlmsg.StatusNoIDs,
		},
		{
			"bad service before conflict",
			func(t *testing.T, r *Registry) { mustStart(t, r, StartReq{Service: 1, Instance: 3}) },
			StartReq{Service: 40, Instance: 3}, ctlmsg.StatusServiceMax,
		},
		{
			"service count before conflict",
			func(t *testing.T, r *Registry) {
				for range ctlmsg.MaxNFsPerService {
					mustStart(t, r, StartReq{Service: 5})
				}
			},
			StartReq{Service: 5, Instance: 1}, ctlmsg.StatusServiceCountMax,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Registry
			if tt.setup != nil {
				tt.setup(t, &r)
			}
			if id, st := r.Start(tt.req); st != tt.want || id != 0 {
				t.Fatalf("Start(%+v) = %d, %v; want 0, %v", tt.req, id, st, tt.want)
			}
		})
	}
}

func TestRegistryRefusedStartLeavesNoTrace(t *testing.T) {
	var r Registry
	mustStart(t, &r, StartReq{Service: 1}) // 1
	for _, req := range []StartReq{{Service: 0}, {Service: 99}, {Service: 1, Instance: 1}} {
		r.Start(req)
	}
	// ONVM would have advanced next_instance_id on each refusal.
	if id := mustStart(t, &r, StartReq{Service: 1}); id != 2 {
		t.Fatalf("ID after refusals = %d, want 2", id)
	}
	if _, ok := r.Lookup(3); ok {
		t.Fatal("a refused Start left an entry")
	}
}

func TestRegistryStandbyGetsIDButIsNeverListed(t *testing.T) {
	var r Registry
	active := mustRun(t, &r, StartReq{Service: 2, Tag: "fw"})
	standby := mustRun(t, &r, StartReq{Service: 2, Tag: "fw", Standby: true})
	if standby == active || standby == 0 {
		t.Fatalf("standby ID = %d", standby)
	}
	if got := r.Instances(2); !slices.Equal(got, []InstanceID{active}) {
		t.Fatalf("Instances = %v, want [%d]", got, active)
	}
	for _, id := range r.Buckets(2) {
		if id != active {
			t.Fatalf("a bucket maps to %d", id)
		}
	}
	if r.NumRunning() != 2 {
		t.Fatalf("NumRunning = %d, want 2 (standbys run)", r.NumRunning())
	}
	e, ok := r.Lookup(standby)
	if !ok || !e.Standby || e.Status != ctlmsg.StatusRunning || e.Service != 2 {
		t.Fatalf("Lookup(standby) = %+v, %v", e, ok)
	}
	if err := r.Stop(standby); err != nil {
		t.Fatal(err)
	}
	if got := r.Instances(2); !slices.Equal(got, []InstanceID{active}) {
		t.Fatalf("after the standby left, Instances = %v", got)
	}
}

func TestRegistryStandbyDoesNotCountAgainstServiceLimit(t *testing.T) {
	var r Registry
	for range ctlmsg.MaxNFsPerService {
		mustRun(t, &r, StartReq{Service: 5})
	}
	mustStart(t, &r, StartReq{Service: 5, Standby: true})
}

func TestRegistryInstancesShiftLeftOnStop(t *testing.T) {
	var r Registry
	a := mustRun(t, &r, StartReq{Service: 3})
	b := mustStart(t, &r, StartReq{Service: 3})
	c := mustRun(t, &r, StartReq{Service: 3})
	if err := r.Ready(b); err != nil { // ready order, not ID order
		t.Fatal(err)
	}
	if got := r.Instances(3); !slices.Equal(got, []InstanceID{a, c, b}) {
		t.Fatalf("Instances = %v, want [%d %d %d]", got, a, c, b)
	}
	if err := r.Stop(c); err != nil {
		t.Fatal(err)
	}
	if got := r.Instances(3); !slices.Equal(got, []InstanceID{a, b}) {
		t.Fatalf("after stopping %d: Instances = %v", c, got)
	}
	got := r.Instances(3)
	got[0] = 99
	if r.Instances(3)[0] != a {
		t.Fatal("Instances returned the registry's own slice")
	}
}

func TestRegistryStoppingAStartingNFKeepsInstances(t *testing.T) {
	var r Registry
	a := mustRun(t, &r, StartReq{Service: 3})
	b := mustStart(t, &r, StartReq{Service: 3})
	before := r.Buckets(3)
	if err := r.Stop(b); err != nil {
		t.Fatal(err)
	}
	if r.Buckets(3) != before || !slices.Equal(r.Instances(3), []InstanceID{a}) {
		t.Fatal("stopping a STARTING NF changed the service")
	}
	if r.NumRunning() != 1 {
		t.Fatalf("NumRunning = %d", r.NumRunning())
	}
}

func TestRegistryLifecycleErrors(t *testing.T) {
	var r Registry
	id := mustRun(t, &r, StartReq{Service: 1})
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"ready twice", r.Ready(id), ErrNotStarting},
		{"ready unknown", r.Ready(50), ErrUnknownInstance},
		{"ready 0", r.Ready(0), ErrUnknownInstance},
		{"ready out of range", r.Ready(500), ErrUnknownInstance},
		{"stop unknown", r.Stop(50), ErrUnknownInstance},
		{"stop out of range", r.Stop(0xFFFF), ErrUnknownInstance},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if err := r.Stop(id); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(id); !errors.Is(err, ErrUnknownInstance) {
		t.Errorf("stop twice: err = %v", err)
	}
	if _, ok := r.Lookup(id); ok {
		t.Error("Lookup after Stop succeeded")
	}
}

func TestRegistryLookupReturnsEntry(t *testing.T) {
	var r Registry
	id := mustStart(t, &r, StartReq{Service: 4, Tag: "nat", PID: 1234})
	want := Entry{ID: id, Service: 4, Status: ctlmsg.StatusStarting, Tag: "nat", PID: 1234}
	if e, ok := r.Lookup(id); !ok || e != want {
		t.Fatalf("Lookup = %+v, %v; want %+v", e, ok, want)
	}
	if err := r.Ready(id); err != nil {
		t.Fatal(err)
	}
	want.Status = ctlmsg.StatusRunning
	if e, _ := r.Lookup(id); e != want {
		t.Fatalf("after Ready: %+v", e)
	}
}

func TestRegistryBucketEmptyService(t *testing.T) {
	var r Registry
	for _, svc := range []ServiceID{0, 1, 31, 32, 0xFFFF} {
		if id, ok := r.Bucket(svc, 12345); ok || id != 0 {
			t.Errorf("Bucket(%d) = %d, %v on an empty registry", svc, id, ok)
		}
	}
	a := mustRun(t, &r, StartReq{Service: 1})
	if err := r.Stop(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Bucket(1, 7); ok {
		t.Error("Bucket found an instance after the last one left")
	}
}

// bucketCounts returns how many buckets each instance of the table owns.
func bucketCounts(b [NumBuckets]InstanceID) map[InstanceID]int {
	m := map[InstanceID]int{}
	for _, id := range b {
		m[id]++
	}
	return m
}

func TestRegistryBucketsBalancedAndMinimalOnJoin(t *testing.T) {
	var r Registry
	var ids []InstanceID
	for n := 1; n <= ctlmsg.MaxNFsPerService; n++ {
		before := r.Buckets(7)
		id := mustRun(t, &r, StartReq{Service: 7})
		ids = append(ids, id)
		after := r.Buckets(7)
		counts := bucketCounts(after)
		if len(counts) != n {
			t.Fatalf("%d instances own buckets, want %d", len(counts), n)
		}
		lo, hi := NumBuckets/n, (NumBuckets+n-1)/n
		for x, c := range counts {
			if c < lo || c > hi {
				t.Fatalf("with %d instances, %d owns %d buckets, want %d..%d", n, x, c, lo, hi)
			}
		}
		moved := 0
		for i := range after {
			if after[i] != before[i] {
				moved++
				if after[i] != id {
					t.Fatalf("bucket %d moved to %d, not to the joining %d", i, after[i], id)
				}
			}
		}
		if n > 1 && moved != counts[id] {
			t.Fatalf("moved %d buckets, the newcomer owns %d", moved, counts[id])
		}
		if moved > hi {
			t.Fatalf("join of instance %d moved %d buckets, more than a fair share %d", n, moved, hi)
		}
	}
	for _, h := range []uint32{0, 1, 0xFF, 0x1000000, 0xDEADBEEF} {
		id, ok := r.Bucket(7, h)
		if !ok || !slices.Contains(ids, id) || id != r.Buckets(7)[BucketIndex(h)] {
			t.Fatalf("Bucket(7, %#x) = %d, %v", h, id, ok)
		}
	}
}

func TestBucketIndexUsesEveryByte(t *testing.T) {
	for shift := 0; shift < 32; shift += 8 {
		seen := map[int]bool{}
		for v := range uint32(256) {
			seen[BucketIndex(v<<shift)] = true
		}
		if len(seen) != NumBuckets {
			t.Errorf("byte at bit %d reaches %d buckets, want %d", shift, len(seen), NumBuckets)
		}
	}
}

func TestRegistryBucketDoesNotAllocate(t *testing.T) {
	var r Registry
	fill(t, &r, 40, true)
	var sink InstanceID
	allocs := testing.AllocsPerRun(1000, func() {
		id, _ := r.Bucket(3, 0xCAFEF00D)
		sink += id
	})
	if allocs != 0 {
		t.Fatalf("Bucket allocates %v times per call", allocs)
	}
}

// TestRegistryRandomJoinLeave runs random start/ready/stop sequences, with
// standbys and explicit IDs, over four services so that both a service's limit
// and the whole registry fill up. A naive model (a map of live NFs and each
// service's list in ready order) checks every step: Start's status is the one
// ONVM's checks give; Instances equals the model's list; every bucket maps to
// a running, non-standby instance of its service (0 only when there is none);
// counts differ by at most one; a leave moves no survivor's bucket and a join
// moves buckets only to the newcomer. Replay with -registry.seed.
func TestRegistryRandomJoinLeave(t *testing.T) {
	seed := *registrySeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -registry.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))

	type nf struct {
		svc              ServiceID
		standby, running bool
	}
	var r Registry
	live := map[InstanceID]*nf{}
	lists := map[ServiceID][]InstanceID{}
	const services = 4
	steps := 20000
	if testing.Short() {
		steps = 2000
	}
	for step := range steps {
		svc := ServiceID(rng.IntN(services) + 1)
		before := r.Buckets(svc)
		var joined, left InstanceID
		// pick returns a random live NF of svc that passes ok, in ID order so
		// that the seed alone decides the run.
		pick := func(ok func(*nf) bool) (InstanceID, *nf) {
			var ids []InstanceID
			for id, n := range live {
				if n.svc == svc && ok(n) {
					ids = append(ids, id)
				}
			}
			if len(ids) == 0 {
				return 0, nil
			}
			slices.Sort(ids)
			id := ids[rng.IntN(len(ids))]
			return id, live[id]
		}
		switch op := rng.IntN(10); {
		case op < 4: // start
			req := StartReq{Service: svc, Standby: rng.IntN(5) == 0}
			if rng.IntN(4) == 0 {
				req.Instance = InstanceID(rng.IntN(ctlmsg.MaxNFs + 2))
			}
			active := 0
			for _, n := range live {
				if n.svc == svc && !n.standby {
					active++
				}
			}
			_, taken := live[req.Instance]
			full := len(live) == ctlmsg.MaxNFs-1
			var want ctlmsg.Status
			switch {
			case req.Instance == 0 && full, int(req.Instance) >= ctlmsg.MaxNFs:
				want = ctlmsg.StatusNoIDs
			case !req.Standby && active >= ctlmsg.MaxNFsPerService:
				want = ctlmsg.StatusServiceCountMax
			case taken:
				want = ctlmsg.StatusIDConflict
			default:
				want = ctlmsg.StatusStarting
			}
			id, st := r.Start(req)
			if st != want {
				t.Fatalf("step %d: Start(%+v) = %d, %v; model says %v", step, req, id, st, want)
			}
			if st == ctlmsg.StatusStarting {
				if _, dup := live[id]; dup || id == 0 || int(id) >= ctlmsg.MaxNFs ||
					(req.Instance != 0 && id != req.Instance) {
					t.Fatalf("step %d: Start(%+v) handed out %d", step, req, id)
				}
				live[id] = &nf{svc: svc, standby: req.Standby}
			}
		case op < 7: // ready a starting NF of svc
			if id, n := pick(func(n *nf) bool { return !n.running }); n != nil {
				if err := r.Ready(id); err != nil {
					t.Fatalf("step %d: Ready(%d): %v", step, id, err)
				}
				n.running = true
				if !n.standby {
					lists[svc] = append(lists[svc], id)
					joined = id
				}
			}
		default: // stop any NF of svc
			if id, n := pick(func(*nf) bool { return true }); n != nil {
				if err := r.Stop(id); err != nil {
					t.Fatalf("step %d: Stop(%d): %v", step, id, err)
				}
				delete(live, id)
				if n.running && !n.standby {
					lists[svc] = slices.DeleteFunc(lists[svc], func(x InstanceID) bool { return x == id })
					left = id
				}
			}
		}

		after := r.Buckets(svc)
		list := lists[svc]
		if got := r.Instances(svc); !slices.Equal(got, list) {
			t.Fatalf("step %d: Instances(%d) = %v, model %v", step, svc, got, list)
		}
		counts := map[InstanceID]int{}
		for i, id := range after {
			if len(list) == 0 {
				if id != 0 {
					t.Fatalf("step %d: service %d has no instance but bucket %d maps to %d", step, svc, i, id)
				}
				continue
			}
			n := live[id]
			if n == nil || !n.running || n.standby || n.svc != svc {
				t.Fatalf("step %d: service %d bucket %d maps to %d (%+v)", step, svc, i, id, n)
			}
			counts[id]++
			if left != 0 && before[i] != left && before[i] != id {
				t.Fatalf("step %d: %d left but bucket %d moved from survivor %d to %d", step, left, i, before[i], id)
			}
			if joined != 0 && before[i] != id && id != joined {
				t.Fatalf("step %d: %d joined but bucket %d moved from %d to %d", step, joined, i, before[i], id)
			}
			if joined == 0 && left == 0 && before[i] != id {
				t.Fatalf("step %d: bucket %d moved without a join or leave", step, i)
			}
		}
		if len(list) > 0 {
			lo, hi := NumBuckets, 0
			for _, id := range list {
				lo, hi = min(lo, counts[id]), max(hi, counts[id])
			}
			if hi-lo > 1 {
				t.Fatalf("step %d: service %d bucket counts range %d..%d", step, svc, lo, hi)
			}
		}
		running := 0
		for _, n := range live {
			if n.running {
				running++
			}
		}
		if r.NumRunning() != running {
			t.Fatalf("step %d: NumRunning = %d, model %d", step, r.NumRunning(), running)
		}
	}
}
