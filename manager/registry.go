package manager

// The NF registry: which instance IDs are taken, by which service, in which
// state, and which instance each flow bucket of a service goes to. It mirrors
// ONVM's onvm_nf_start / onvm_nf_ready / onvm_nf_stop (ONVM-COMPAT.md §1.6,
// §2.8) as a pure value: no I/O, no clocks, no goroutines. Its owner (the
// control loop in ctl.go) serialises every call and publishes what the packet
// path needs (Buckets, Instances) as copies.
//
// Life of an NF here:
//
//	Start  (Register)  → slot STARTING, ID taken; not yet among the instances
//	Ready  (Ready)     → slot RUNNING; appended to the service's instances and
//	                     given its share of the service's buckets
//	Stop   (Stopping,
//	        death)     → slot free; removed from the instances (the rest shift
//	                     left, as ONVM's services[] does) and its buckets handed
//	                     to the survivors
//
// Deliberate differences from ONVM, each a fix of a [quirk] in
// ONVM-COMPAT.md:
//   - A STARTING slot is taken. ONVM's onvm_nf_next_instance_id skips only
//     RUNNING slots, so after the round-robin wraps two registering NFs can be
//     handed the same ID; here automatic allocation skips STARTING slots and an
//     explicit ID that is STARTING gets StatusIDConflict.
//   - The per-service limit counts STARTING as well as RUNNING instances.
//     ONVM counts only RUNNING ones (nf_per_service_count grows in
//     onvm_nf_ready), so 33 NFs starting together overflow services[sid][32].
//   - A refused Start does not move the round-robin cursor. ONVM advances
//     next_instance_id before its other checks fail.
//   - Service 0 is refused with StatusServiceMax. ONVM's manager accepts it
//     and relies on the NF's own -r check.
//   - An explicit instance ID of 0 means "any" (the wire's convention) rather
//     than ONVM's reserved slot 0, which ONVM would hand out.

import (
	"errors"
	"fmt"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
)

// InstanceID identifies one NF process on this manager: 1..ctlmsg.MaxNFs-1,
// with 0 meaning none (ONVM's instance_id).
type InstanceID uint16

// ServiceID identifies the service an NF provides: 1..ctlmsg.MaxServices-1,
// with 0 reserved (ONVM's service_id).
type ServiceID uint16

// NumBuckets is the number of flow-hash buckets per service. A flow's bucket
// is fixed by its hash, and a bucket changes instance only when instances join
// or leave, so a flow keeps its instance, and that instance's state, for as
// long as the instance runs (RESILIENCY.md, local standby).
const NumBuckets = ctlmsg.NumBuckets

// Registry errors, wrapped with the instance ID.
var (
	// ErrUnknownInstance is an ID that is out of range or not registered.
	ErrUnknownInstance = errors.New("unknown instance")
	// ErrNotStarting is Ready for an NF that is already running.
	ErrNotStarting = errors.New("instance is not starting")
)

// StartReq is a registration request: the fields of ctlmsg.Register that the
// registry keeps.
type StartReq struct {
	// Service is the NF's service ID.
	Service ServiceID
	// Instance is the requested ID (ONVM -n), or 0 for the next free one.
	Instance InstanceID
	// Standby registers an idle standby: it holds an ID but is never listed
	// in Instances, never owns buckets and does not count against
	// ctlmsg.MaxNFsPerService (whose purpose is to bound that list).
	Standby bool
	// Tag names the NF in stats.
	Tag string
	// PID is the NF's process ID, from the socket's peer credentials.
	PID int
}

// Entry describes a registered NF. Lookup returns it by value.
type Entry struct {
	// ID is the NF's instance ID.
	ID InstanceID
	// Service is the NF's service ID.
	Service ServiceID
	// Status is ctlmsg.StatusStarting until Ready, then ctlmsg.StatusRunning.
	Status ctlmsg.Status
	// Standby is true for a standby registration.
	Standby bool
	// Tag names the NF in stats.
	Tag string
	// PID is the NF's process ID.
	PID int
}

// Registry assigns instance IDs and maps flow buckets to instances. The zero
// value is an empty registry ready to use. Registry is not safe for concurrent
// use: one goroutine (the manager's control loop) owns it.
type Registry struct {
	// slots is indexed by InstanceID; slots[0] is never used (ID 0 is
	// reserved, ONVM MAX_NFS note). A slot is taken iff its Status is not
	// StatusWaitingForID (the zero value).
	slots [ctlmsg.MaxNFs]Entry
	// next is where the round-robin scan for a free ID starts (ONVM's
	// next_instance_id); 0 means 1.
	next InstanceID
	// taken counts taken slots.
	taken int
	// running counts RUNNING slots, standbys included.
	running int
	// perService counts each service's non-standby slots, STARTING and
	// RUNNING, against ctlmsg.MaxNFsPerService.
	perService [ctlmsg.MaxServices]int
	// services lists each service's RUNNING non-standby instances in the
	// order they became ready (ONVM's services[sid][]).
	services [ctlmsg.MaxServices][]InstanceID
	// buckets maps each service's flow buckets to instances; 0 when the
	// service has no instance.
	buckets [ctlmsg.MaxServices][NumBuckets]InstanceID
}

// Start registers an NF and returns its instance ID with
// ctlmsg.StatusStarting, or 0 and the refusal. The checks run in ONVM's order
// (onvm_nf_start), so a request that breaks several rules gets the code ONVM
// would give:
//
//  1. no free ID, or an explicit ID ≥ MaxNFs   → StatusNoIDs
//  2. service 0 or ≥ MaxServices                → StatusServiceMax
//  3. service already has MaxNFsPerService NFs  → StatusServiceCountMax
//  4. explicit ID taken (STARTING or RUNNING)   → StatusIDConflict
//
// Automatic IDs are handed out round-robin (ONVM-COMPAT.md §2.8): the scan
// starts after the last automatic ID and wraps to 1, so a freed ID is reused
// only after every higher one was tried. Core allocation (§1.9) is not the
// registry's job; the caller does it after a successful Start and calls Stop
// if it fails.
func (r *Registry) Start(req StartReq) (InstanceID, ctlmsg.Status) {
	id := req.Instance
	if id == 0 {
		var ok bool
		if id, ok = r.nextFree(); !ok {
			return 0, ctlmsg.StatusNoIDs
		}
	} else if int(id) >= ctlmsg.MaxNFs {
		return 0, ctlmsg.StatusNoIDs
	}
	if req.Service == 0 || int(req.Service) >= ctlmsg.MaxServices {
		return 0, ctlmsg.StatusServiceMax
	}
	if !req.Standby && r.perService[req.Service] >= ctlmsg.MaxNFsPerService {
		return 0, ctlmsg.StatusServiceCountMax
	}
	if r.slots[id].Status != ctlmsg.StatusWaitingForID {
		return 0, ctlmsg.StatusIDConflict
	}

	if req.Instance == 0 {
		// ONVM post-increments next_instance_id; an explicit -n leaves it.
		r.next = id + 1
	}
	r.slots[id] = Entry{
		ID:      id,
		Service: req.Service,
		Status:  ctlmsg.StatusStarting,
		Standby: req.Standby,
		Tag:     req.Tag,
		PID:     req.PID,
	}
	r.taken++
	if !req.Standby {
		r.perService[req.Service]++
	}
	return id, ctlmsg.StatusStarting
}

// nextFree returns the first free ID at or after the cursor, wrapping to 1,
// without moving the cursor.
func (r *Registry) nextFree() (InstanceID, bool) {
	if r.taken >= ctlmsg.MaxNFs-1 {
		return 0, false
	}
	start := int(max(r.next, 1))
	for i := range ctlmsg.MaxNFs - 1 {
		id := (start-1+i)%(ctlmsg.MaxNFs-1) + 1
		if r.slots[id].Status == ctlmsg.StatusWaitingForID {
			return InstanceID(id), true
		}
	}
	// taken says a slot is free but none is: our bookkeeping is broken.
	panic(fmt.Sprintf("registry: taken=%d but no free slot", r.taken))
}

// Ready marks a STARTING NF as RUNNING (ONVM's onvm_nf_ready). Unless it is a
// standby, the NF is appended to its service's instances and takes its share
// of the service's buckets from the instances that have most, moving no more
// buckets than that share. It fails with ErrUnknownInstance or ErrNotStarting.
func (r *Registry) Ready(id InstanceID) error {
	e, err := r.slot(id)
	if err != nil {
		return fmt.Errorf("ready nf %d: %w", id, err)
	}
	if e.Status != ctlmsg.StatusStarting {
		return fmt.Errorf("ready nf %d (%s): %w", id, e.Status, ErrNotStarting)
	}
	e.Status = ctlmsg.StatusRunning
	r.running++
	if !e.Standby {
		r.services[e.Service] = append(r.services[e.Service], id)
		r.joinBuckets(e.Service, id)
	}
	return nil
}

// Stop frees a STARTING or RUNNING NF's ID (ONVM's onvm_nf_stop). A listed
// instance leaves its service's list, the later ones shifting left as in
// ONVM, and its buckets go to the survivors; no survivor's bucket moves. It
// fails with ErrUnknownInstance.
func (r *Registry) Stop(id InstanceID) error {
	e, err := r.slot(id)
	if err != nil {
		return fmt.Errorf("stop nf %d: %w", id, err)
	}
	svc, wasRunning, standby := e.Service, e.Status == ctlmsg.StatusRunning, e.Standby
	*e = Entry{}
	r.taken--
	if wasRunning {
		r.running--
	}
	if standby {
		return nil
	}
	r.perService[svc]--
	if wasRunning {
		list := r.services[svc]
		for i, x := range list {
			if x == id {
				r.services[svc] = append(list[:i], list[i+1:]...)
				break
			}
		}
		r.leaveBuckets(svc, id)
	}
	return nil
}

// slot returns the taken slot of id, or ErrUnknownInstance.
func (r *Registry) slot(id InstanceID) (*Entry, error) {
	if id == 0 || int(id) >= ctlmsg.MaxNFs || r.slots[id].Status == ctlmsg.StatusWaitingForID {
		return nil, ErrUnknownInstance
	}
	return &r.slots[id], nil
}

// Lookup returns a copy of the entry of id, or false when id is not registered.
func (r *Registry) Lookup(id InstanceID) (Entry, bool) {
	e, err := r.slot(id)
	if err != nil {
		return Entry{}, false
	}
	return *e, true
}

// Instances returns a caller-owned copy of the service's RUNNING non-standby
// instances in the order they became ready (ONVM's services[sid]), or nil.
func (r *Registry) Instances(service ServiceID) []InstanceID {
	if int(service) >= ctlmsg.MaxServices || len(r.services[service]) == 0 {
		return nil
	}
	return append([]InstanceID(nil), r.services[service]...)
}

// NumRunning returns how many NFs are RUNNING, standbys included (ONVM's
// num_nfs counts every RUNNING NF).
func (r *Registry) NumRunning() int { return r.running }

// BucketIndex returns the bucket of a flow hash. It folds all four bytes of
// the hash, so a hash whose entropy sits in its high bits (as some NIC RSS
// hashes' does) still spreads over every bucket. It is safe for concurrent use.
func BucketIndex(hash uint32) int { return ctlmsg.BucketIndex(hash) }

// Bucket returns the instance that serves flows with this hash in service, or
// false when the service has no running instance. It does not allocate.
func (r *Registry) Bucket(service ServiceID, hash uint32) (InstanceID, bool) {
	if int(service) >= ctlmsg.MaxServices {
		return 0, false
	}
	id := r.buckets[service][BucketIndex(hash)]
	return id, id != 0
}

// Buckets returns a copy of the service's bucket table (0 where the service
// has no instance), for the owner to publish to the packet path and to the
// replicator, which replicates the bucket→instance map (RESILIENCY.md).
func (r *Registry) Buckets(service ServiceID) [NumBuckets]InstanceID {
	if int(service) >= ctlmsg.MaxServices {
		return [NumBuckets]InstanceID{}
	}
	return r.buckets[service]
}

// joinBuckets gives the new instance id, already appended to the service's
// list, buckets taken one at a time from the instance that has most (the
// earliest listed on a tie, its highest-numbered bucket), until no instance has
// more than one bucket above id. Counts then differ by at most one, and no
// bucket moved that balance did not require.
func (r *Registry) joinBuckets(svc ServiceID, id InstanceID) {
	b := &r.buckets[svc]
	list := r.services[svc]
	if len(list) == 1 {
		for i := range b {
			b[i] = id
		}
		return
	}
	var count [ctlmsg.MaxNFs]int
	for _, x := range b {
		count[x]++
	}
	for {
		victim := InstanceID(0)
		for _, x := range list {
			if x != id && (victim == 0 || count[x] > count[victim]) {
				victim = x
			}
		}
		if count[victim] <= count[id]+1 {
			return
		}
		for i := NumBuckets - 1; i >= 0; i-- {
			if b[i] == victim {
				b[i] = id
				break
			}
		}
		count[victim]--
		count[id]++
	}
}

// leaveBuckets hands each bucket of id, in bucket order, to the survivor with
// fewest buckets (the earliest listed on a tie). Survivors keep every bucket
// they had, so their flows stay put; counts still differ by at most one.
func (r *Registry) leaveBuckets(svc ServiceID, id InstanceID) {
	b := &r.buckets[svc]
	list := r.services[svc]
	if len(list) == 0 {
		*b = [NumBuckets]InstanceID{}
		return
	}
	var count [ctlmsg.MaxNFs]int
	for _, x := range b {
		count[x]++
	}
	for i, x := range b {
		if x != id {
			continue
		}
		heir := list[0]
		for _, y := range list[1:] {
			if count[y] < count[heir] {
				heir = y
			}
		}
		b[i] = heir
		count[heir]++
	}
}
