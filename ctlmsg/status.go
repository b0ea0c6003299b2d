package ctlmsg

//go:generate stringer -type=Status,ONVMMsg -linecomment -output=status_string.go

// Status is an ONVM NF status code (ONVM-COMPAT.md §2.7, onvm_common.h). The
// manager answers a Register with one in RegisterReply.Status: StatusStarting
// means the NF was accepted (ONVM sets cfg->status = NF_STARTING on success),
// the codes from StatusIDConflict up are the refusals. The numbers are ONVM's
// so that stats, logs and exit codes (ONVM returns -status) match.
type Status uint8

// NF status codes, in ONVM's order and with ONVM's numbers.
const (
	// StatusWaitingForID is a registration the manager has not answered yet.
	StatusWaitingForID Status = 0 // NF_WAITING_FOR_ID
	// StatusStarting is an accepted registration whose NF is not ready yet.
	StatusStarting Status = 1 // NF_STARTING
	// StatusRunning is an NF that sent Ready and was acknowledged.
	StatusRunning Status = 2 // NF_RUNNING
	// StatusPaused is defined by ONVM but never set there; kept for the numbering.
	StatusPaused Status = 3 // NF_PAUSED
	// StatusStopped is an NF that has stopped.
	StatusStopped Status = 4 // NF_STOPPED
	// StatusIDConflict refuses an explicit instance ID that is in use.
	StatusIDConflict Status = 5 // NF_ID_CONFLICT
	// StatusNoIDs refuses a registration when no instance ID is free, or when
	// the requested one is out of range.
	StatusNoIDs Status = 6 // NF_NO_IDS
	// StatusServiceMax refuses a service ID outside 1..MaxServices-1.
	StatusServiceMax Status = 7 // NF_SERVICE_MAX
	// StatusServiceCountMax refuses an NF whose service already has
	// MaxNFsPerService instances.
	StatusServiceCountMax Status = 8 // NF_SERVICE_COUNT_MAX
	// StatusNoCores refuses an NF when no core is enabled.
	StatusNoCores Status = 9 // NF_NO_CORES
	// StatusNoDedicatedCores refuses an NF that wants a core of its own when
	// none is free.
	StatusNoDedicatedCores Status = 10 // NF_NO_DEDICATED_CORES
	// StatusCoreOutOfRange refuses a manual core that is not enabled or does
	// not exist.
	StatusCoreOutOfRange Status = 11 // NF_CORE_OUT_OF_RANGE
	// StatusCoreBusy refuses a manual core that another NF holds exclusively.
	StatusCoreBusy Status = 12 // NF_CORE_BUSY
	// StatusWaitingForLPM is ONVM's pending LPM-region request.
	StatusWaitingForLPM Status = 13 // NF_WAITING_FOR_LPM
	// StatusWaitingForFT is ONVM's pending flow-table request.
	StatusWaitingForFT Status = 14 // NF_WAITING_FOR_FT
)

// numStatus is one past the largest status code; codes at or above it are
// rejected on the wire. It is untyped so that stringer does not name it.
const numStatus = int(StatusWaitingForFT) + 1

// StatusMessage returns the line an ONVM NF prints when registration ends with
// s (onvm_nflib_start_nf, ONVM-COMPAT.md §1.6 step 4), so a Reinforce NF
// refused by the manager says exactly what an ONVM NF would. It returns "" for
// StatusStarting, the success code, for which ONVM prints nothing; every other
// code without a message of its own gets ONVM's catch-all line. It is safe for
// concurrent use.
func StatusMessage(s Status) string {
	switch s {
	case StatusStarting:
		return ""
	case StatusIDConflict:
		return "Selected ID already in use. Exiting..."
	case StatusServiceMax:
		return "Service ID must be less than 32"
	case StatusServiceCountMax:
		// ONVM prints this one without a trailing newline; the text is the same.
		return "Maximum amount of NF's per service spawned, must be less than 32"
	case StatusNoIDs:
		return "There are no ids available for this NF"
	case StatusNoCores:
		return "There are no cores available for this NF"
	case StatusNoDedicatedCores:
		return "There is no space to assign a dedicated core, or the selected core has NFs running"
	case StatusCoreOutOfRange:
		return "Requested core is not enabled or not in range"
	case StatusCoreBusy:
		return "Requested core is busy"
	default:
		return "Error occurred during manager initialization"
	}
}

// ONVMMsg is an ONVM control-message type code (ONVM-COMPAT.md §2.6,
// onvm_msg_common.h). Reinforce's wire uses Type instead; these codes exist so
// stats and compatibility output can name ONVM's messages.
type ONVMMsg uint8

// ONVM message type codes, with ONVM's numbers.
const (
	// ONVMMsgNoop does nothing.
	ONVMMsgNoop ONVMMsg = 0 // MSG_NOOP
	// ONVMMsgStop tells an NF to stop (manager to NF); our Stop.
	ONVMMsgStop ONVMMsg = 1 // MSG_STOP
	// ONVMMsgNFStarting registers an NF (NF to manager); our Register.
	ONVMMsgNFStarting ONVMMsg = 2 // MSG_NF_STARTING
	// ONVMMsgNFStopping unregisters an NF (NF to manager); our Stopping.
	ONVMMsgNFStopping ONVMMsg = 3 // MSG_NF_STOPPING
	// ONVMMsgNFReady says an NF is ready for packets (NF to manager); our Ready.
	ONVMMsgNFReady ONVMMsg = 4 // MSG_NF_READY
	// ONVMMsgScale asks an NF to spawn a child.
	ONVMMsgScale ONVMMsg = 5 // MSG_SCALE
	// ONVMMsgFromNF carries NF-to-NF data.
	ONVMMsgFromNF ONVMMsg = 6 // MSG_FROM_NF
	// ONVMMsgRequestLPMRegion asks the manager for an LPM table.
	ONVMMsgRequestLPMRegion ONVMMsg = 7 // MSG_REQUEST_LPM_REGION
	// ONVMMsgChangeCore tells an NF to move to another core.
	ONVMMsgChangeCore ONVMMsg = 8 // MSG_CHANGE_CORE
	// ONVMMsgRequestFT asks the manager for a flow table.
	ONVMMsgRequestFT ONVMMsg = 9 // MSG_REQUEST_FT
)
