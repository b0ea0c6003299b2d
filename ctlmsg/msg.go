// Package ctlmsg is the control-socket protocol between the manager and NFs
// (and the operator CLI): the message types and their framing.
//
// A conversation, NF side first (ONVM's MSG_NF_STARTING / MSG_NF_READY /
// MSG_STOP / MSG_NF_STOPPING, ONVM-COMPAT.md §1.6, over a Unix socket instead
// of rings):
//
//	NF → manager  Register        service, instance (0 = any), tag, flags
//	manager → NF  RegisterReply   Status (StatusStarting = accepted), region, rings
//	NF → manager  Ready           after mapping the region and its rings
//	manager → NF  Running         the NF's instance is listed; packets may arrive
//	manager → NF  Stop            optional: asks the NF to end (ONVM's MSG_STOP)
//	NF → manager  Stopping        the NF is leaving; the manager reclaims its ID
//
// Either side may send Error and close. The operator CLI instead sends Request
// and reads one Response per request.
//
// Each frame is a 4-byte little-endian length, then a Type byte, then a JSON
// object; the length counts the type byte and the body. See WriteMsg and
// ReadMsg.
package ctlmsg

import (
	"encoding/json"
	"fmt"
)

//go:generate stringer -type=Type -trimprefix=Type -output=type_string.go

// Type is a control message's type: the byte after the frame length. The
// numbers are ours (ONVM's are ONVMMsg) and MUST NOT be reused for another
// meaning: a manager and an NF built from different commits still have to
// agree on them.
type Type uint8

// Message types.
const (
	// TypeInvalid is never sent; a zero type byte is a corrupt frame.
	TypeInvalid Type = iota
	// TypeRegister carries Register (NF to manager).
	TypeRegister
	// TypeRegisterReply carries RegisterReply (manager to NF).
	TypeRegisterReply
	// TypeReady carries Ready (NF to manager).
	TypeReady
	// TypeRunning carries Running (manager to NF).
	TypeRunning
	// TypeStop carries Stop (manager to NF).
	TypeStop
	// TypeStopping carries Stopping (NF to manager).
	TypeStopping
	// TypeError carries Error (either direction).
	TypeError
	// TypeRequest carries Request (CLI to manager).
	TypeRequest
	// TypeResponse carries Response (manager to CLI).
	TypeResponse
	// TypeRoutes carries Routes (manager to NF).
	TypeRoutes
	// TypeFlowAdd carries FlowAdd (NF to manager).
	TypeFlowAdd
	// TypeFlowReply carries FlowReply (manager to NF).
	TypeFlowReply
	// TypePromote carries Promote (manager to a held NF).
	TypePromote
)

// Msg is a control message: one of Register, RegisterReply, Ready, Running,
// Stop, Stopping, Error, Request and Response. ReadMsg returns these as values
// (Register, not *Register), so a type switch on its result names value types;
// WriteMsg accepts values and pointers alike. The interface is sealed: only
// this package's types implement it.
type Msg interface {
	// Type returns the message's wire type.
	Type() Type
	// validate checks what JSON decoding cannot (enumerated strings, code
	// ranges); ReadMsg and WriteMsg both call it.
	validate() error
}

// Register asks the manager for an instance ID (ONVM's onvm_nf_init_cfg with
// MSG_NF_STARTING). Range checks (service, instance) are the manager's: it
// answers them with a Status, as ONVM's onvm_nf_start does.
type Register struct {
	// Service is the NF's service ID (ONVM -r); valid IDs are 1..MaxServices-1.
	Service uint16 `json:"service"`
	// Instance is the requested instance ID (ONVM -n), or 0 for any free one.
	Instance uint16 `json:"instance"`
	// Tag names the NF in stats (ONVM's tag, e.g. "simple_forward").
	Tag string `json:"tag"`
	// PID is the NF's process ID as the NF sees it; informational only, the
	// manager trusts the socket's peer credentials instead.
	PID int `json:"pid"`
	// ManualCore asks for Core rather than a core the manager picks (ONVM -m,
	// MANUAL_CORE_ASSIGNMENT_BIT).
	ManualCore bool `json:"manual_core"`
	// Core is the requested CPU; valid iff ManualCore. ONVM sends the NF's EAL
	// main lcore.
	Core uint16 `json:"core"`
	// ShareCore lets the NF share its core with others (ONVM -s, SHARE_CORE_BIT).
	ShareCore bool `json:"share_core"`
	// Standby registers an idle standby process of the NF (RESILIENCY.md, local
	// standby): it gets an ID but is never one of the service's instances.
	Standby bool `json:"standby"`
	// TTLSeconds is the NF's time to live in seconds (ONVM -t), 0 for none.
	// The NF enforces it; the manager keeps it for stats.
	TTLSeconds uint32 `json:"ttl_s"`
	// PktLimitMillions is the NF's RX packet limit in millions of packets (ONVM
	// -l), 0 for none. The NF enforces it; the manager keeps it for stats.
	PktLimitMillions uint32 `json:"pkt_limit_m"`
	// Transactional says the NF runs its bursts as transactions over a state
	// file (docs/state.md): when it dies the manager keeps everything it
	// held for a restart, which recovers from the file.
	Transactional bool `json:"transactional,omitempty"`
}

// RingRole says which way packets flow through a ring, seen from the NF.
type RingRole string

// Ring roles.
const (
	// RoleRX is a ring the NF consumes: packets arrive on it.
	RoleRX RingRole = "rx"
	// RoleTX is a ring the NF produces into: packets leave on it.
	RoleTX RingRole = "tx"
)

// RingRef names one ring of the region that the NF uses. Every ring has exactly
// one producer and one consumer process (ARCHITECTURE.md), so an NF has one RX
// ring per upstream and one TX ring per downstream.
type RingRef struct {
	// Role is RoleRX or RoleTX.
	Role RingRole `json:"role"`
	// Peer names the process at the other end, for logs and stats (for
	// example "manager" or an NF's tag and instance ID).
	Peer string `json:"peer"`
	// Index is the ring's index in the region's ring table.
	Index uint32 `json:"index"`
}

// RegisterReply answers Register. Status is StatusStarting when the NF is
// accepted (as ONVM's onvm_nflib_start_nf tests for NF_STARTING); any other
// code is a refusal, Message then says why and the remaining fields are zero.
type RegisterReply struct {
	// Status is the outcome (ONVM's cfg->status after onvm_nf_start).
	Status Status `json:"status"`
	// Message is a human-readable detail; an NF prints StatusMessage(Status)
	// for ONVM compatibility and may log Message as well.
	Message string `json:"message,omitempty"`
	// Instance is the assigned instance ID; valid iff Status == StatusStarting.
	Instance uint16 `json:"instance"`
	// RegionPath is the region file the NF maps.
	RegionPath string `json:"region_path"`
	// RegionName is the region's name, checked against the region header.
	RegionName string `json:"region_name"`
	// Burst is the burst size in packets the NF should use (ONVM's
	// PACKET_READ_SIZE unless configured otherwise).
	Burst int `json:"burst"`
	// Rings are the rings the NF consumes and produces into.
	Rings []RingRef `json:"rings"`
	// SharedCPU says the manager runs in shared-core mode (ONVM -c), so the
	// NF sleeps on its doorbell when idle instead of polling.
	SharedCPU bool `json:"shared_cpu"`
	// Owner is the pool-cache owner ID the NF MUST use for every allocation,
	// so the manager can reclaim its slots if it dies.
	Owner uint16 `json:"owner"`
	// ActivePID and ActiveStart name the active process a standby watches
	// (its PID and its start time in clock ticks since boot, /proc/PID/stat
	// field 22, so a reused PID is never mistaken for it). ActivePID is 0
	// when the active is already dead: the standby takes over at once.
	ActivePID   int    `json:"active_pid,omitempty"`
	ActiveStart uint64 `json:"active_start,omitempty"`
	// Ports are the manager's ports, so NFs that forward by port (l2fwd,
	// l3fwd) know which exist and their MAC addresses.
	Ports []PortRef `json:"ports,omitempty"`
	// Hold says the NF's instance is a remote standby here: its state file
	// belongs to the manager, which applies the primary server's
	// transactions into it. The NF must not open it, and waits, idle,
	// for Promote (docs/replicator.md, "Standby NFs").
	Hold bool `json:"hold,omitempty"`
}

// PortRef is one of the manager's ports as an NF sees it.
type PortRef struct {
	ID  uint16 `json:"id"`
	MAC string `json:"mac"` // aa:bb:cc:dd:ee:ff
}

// Ready tells the manager that the NF has mapped the region and its rings and
// may be sent packets (ONVM's MSG_NF_READY). It has no fields.
type Ready struct{}

// Running acknowledges Ready: the NF is listed among its service's instances
// (ONVM sets nf->status = NF_RUNNING, which the NF polls for). It has no fields.
type Running struct{}

// Stop asks the NF to finish its burst and stop (ONVM's MSG_STOP). The NF
// answers with Stopping once its rings are quiet.
type Stop struct {
	// Reason says why, for the NF's log ("operator", "manager shutdown").
	Reason string `json:"reason,omitempty"`
}

// Promote tells a held NF (RegisterReply.Hold) that its chain was promoted
// on this server: the manager has released its state file, and the NF
// opens it and starts processing. It has no fields.
type Promote struct{}

// Stopping tells the manager that the NF is leaving (ONVM's MSG_NF_STOPPING);
// the manager frees its instance ID. It has no fields.
type Stopping struct{}

// Error reports a protocol or setup failure; the sender closes the connection
// after it.
type Error struct {
	// Text describes the failure.
	Text string `json:"text"`
}

// Request is one operator command from the CLI or the web console.
type Request struct {
	// Cmd names the command ("status", "nfs", "kill", ...).
	Cmd string `json:"cmd"`
	// Args are the command's arguments.
	Args []string `json:"args,omitempty"`
}

// Response answers one Request.
type Response struct {
	// OK is true when the command succeeded.
	OK bool `json:"ok"`
	// Error says why the command failed; valid iff !OK.
	Error string `json:"error,omitempty"`
	// Data is the command's result as JSON; its shape depends on Cmd.
	Data json.RawMessage `json:"data,omitempty"`
}

// Type returns TypeRegister.
func (Register) Type() Type { return TypeRegister }

// Type returns TypeRegisterReply.
func (RegisterReply) Type() Type { return TypeRegisterReply }

// Type returns TypeReady.
func (Ready) Type() Type { return TypeReady }

// Type returns TypeRunning.
func (Running) Type() Type { return TypeRunning }

// Type returns TypeStop.
func (Stop) Type() Type { return TypeStop }

// Type returns TypeStopping.
func (Stopping) Type() Type { return TypeStopping }

// Type returns TypeError.
func (Error) Type() Type { return TypeError }

// Type returns TypeRequest.
func (Request) Type() Type { return TypeRequest }

// Type returns TypeResponse.
func (Response) Type() Type { return TypeResponse }

func (Register) validate() error { return nil }

func (m RegisterReply) validate() error {
	if int(m.Status) >= numStatus {
		return fmt.Errorf("status %d is not an ONVM NF status code", uint8(m.Status))
	}
	if m.Burst < 0 {
		return fmt.Errorf("burst %d is negative", m.Burst)
	}
	for i, r := range m.Rings {
		if r.Role != RoleRX && r.Role != RoleTX {
			return fmt.Errorf("rings[%d]: role %q is neither %q nor %q", i, r.Role, RoleRX, RoleTX)
		}
	}
	return nil
}

func (Ready) validate() error    { return nil }
func (Running) validate() error  { return nil }
func (Stop) validate() error     { return nil }
func (Stopping) validate() error { return nil }
func (Error) validate() error    { return nil }
func (Request) validate() error  { return nil }
func (Response) validate() error { return nil }

// newMsg returns a pointer to a zero message of type t for decoding, or nil
// when t is unknown.
func newMsg(t Type) any {
	switch t {
	case TypeRegister:
		return new(Register)
	case TypeRegisterReply:
		return new(RegisterReply)
	case TypeReady:
		return new(Ready)
	case TypeRunning:
		return new(Running)
	case TypeStop:
		return new(Stop)
	case TypeStopping:
		return new(Stopping)
	case TypeError:
		return new(Error)
	case TypeRequest:
		return new(Request)
	case TypeResponse:
		return new(Response)
	case TypeRoutes:
		return new(Routes)
	case TypeFlowAdd:
		return new(FlowAdd)
	case TypeFlowReply:
		return new(FlowReply)
	case TypePromote:
		return new(Promote)
	default:
		return nil
	}
}

// deref turns the decoded pointer from newMsg into the value ReadMsg returns.
func deref(p any) Msg {
	switch v := p.(type) {
	case *Register:
		return *v
	case *RegisterReply:
		return *v
	case *Ready:
		return *v
	case *Running:
		return *v
	case *Stop:
		return *v
	case *Stopping:
		return *v
	case *Error:
		return *v
	case *Request:
		return *v
	case *Response:
		return *v
	case *Routes:
		return *v
	case *FlowAdd:
		return *v
	case *FlowReply:
		return *v
	case *Promote:
		return *v
	default:
		// newMsg and deref list the same types; anything else is our bug.
		panic(fmt.Sprintf("ctlmsg: deref of %T", p))
	}
}

// Routes tells an NF where its packets go: the service chains (for ActionNext)
// and, per destination service, the bucket table that keeps each flow on one
// instance and the direct ring to each instance, if there is one. Packets for
// a service without a direct ring go through the NF's ring to the manager,
// which forwards them. The manager sends a complete Routes after
// RegisterReply and whenever instances join or leave; each replaces the last.
type Routes struct {
	// Version increases with every Routes the manager computes.
	Version uint64 `json:"version"`
	// Chains are indexed by chain ID (shm.Meta.Chain).
	Chains []ChainRoute `json:"chains"`
	// Services lists every service with at least one running instance.
	Services []ServiceRoute `json:"services"`
	// Inputs are the rings this NF consumes: from the manager and from every
	// upstream instance with a direct ring to it.
	Inputs []uint32 `json:"inputs"`
}

// ChainRoute is one service chain: the services in order, then the port the
// chain exits on (-1: packets are dropped at the end of the chain).
type ChainRoute struct {
	Services []uint16 `json:"services"`
	OutPort  int      `json:"out_port"`
}

// ServiceRoute says how to reach one service's instances.
type ServiceRoute struct {
	Service uint16 `json:"service"`
	// Buckets maps a flow hash's bucket (manager.BucketIndex) to an instance ID;
	// exactly NumBuckets entries.
	Buckets []uint16 `json:"buckets"`
	// Direct lists the instances this NF has a direct ring to.
	Direct []DirectRing `json:"direct"`
}

// DirectRing is a ring from this NF straight to one instance.
type DirectRing struct {
	Instance uint16 `json:"instance"`
	Ring     uint32 `json:"ring"`
}

// Type returns TypeRoutes.
func (Routes) Type() Type { return TypeRoutes }

// NumBuckets is the size of a service's flow-hash bucket table.
const NumBuckets = 256

// BucketIndex is the bucket of a flow hash. It folds all four bytes so that a
// hash whose entropy sits in any byte still spreads; the manager and every NF
// MUST use this same function.
func BucketIndex(hash uint32) int {
	return int(uint8(hash ^ hash>>8 ^ hash>>16 ^ hash>>24))
}

func (m Routes) validate() error {
	for i, s := range m.Services {
		if len(s.Buckets) != NumBuckets {
			return fmt.Errorf("services[%d]: %d buckets, want %d", i, len(s.Buckets), NumBuckets)
		}
	}
	for i, c := range m.Chains {
		if c.OutPort < -1 || c.OutPort > 0xFFFF {
			return fmt.Errorf("chains[%d]: out port %d out of range", i, c.OutPort)
		}
	}
	return nil
}

// FlowAdd asks the manager's flow director to send matching packets to a
// chain (ONVM: an NF writing onvm_flow_dir entries). Prefixes are in
// netip.Prefix text form ("" = any); port ranges are inclusive ([0,0] = any);
// Proto 0 = any. A rule whose fields are all exact is an exact 5-tuple entry.
type FlowAdd struct {
	Chain    string    `json:"chain"`
	Src      string    `json:"src,omitempty"`
	Dst      string    `json:"dst,omitempty"`
	SrcPorts [2]uint16 `json:"src_ports"`
	DstPorts [2]uint16 `json:"dst_ports"`
	Proto    uint8     `json:"proto"`
	Priority int       `json:"priority"`
}

// Type returns TypeFlowAdd.
func (FlowAdd) Type() Type { return TypeFlowAdd }

func (m FlowAdd) validate() error {
	if m.Chain == "" {
		return fmt.Errorf("flow rule names no chain")
	}
	if m.SrcPorts[0] > m.SrcPorts[1] || m.DstPorts[0] > m.DstPorts[1] {
		return fmt.Errorf("port range upside down")
	}
	return nil
}

// FlowReply answers FlowAdd: Error is empty on success.
type FlowReply struct {
	Error string `json:"error,omitempty"`
}

// Type returns TypeFlowReply.
func (FlowReply) Type() Type { return TypeFlowReply }

// Type returns TypePromote.
func (Promote) Type() Type { return TypePromote }

func (Promote) validate() error { return nil }

func (FlowReply) validate() error { return nil }
