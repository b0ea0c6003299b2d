package ctlmsg

import "testing"

func TestStatusCodesAreONVMs(t *testing.T) {
	// ONVM-COMPAT.md §2.7: the code and the name must both match.
	want := []string{
		"NF_WAITING_FOR_ID", "NF_STARTING", "NF_RUNNING", "NF_PAUSED", "NF_STOPPED",
		"NF_ID_CONFLICT", "NF_NO_IDS", "NF_SERVICE_MAX", "NF_SERVICE_COUNT_MAX", "NF_NO_CORES",
		"NF_NO_DEDICATED_CORES", "NF_CORE_OUT_OF_RANGE", "NF_CORE_BUSY", "NF_WAITING_FOR_LPM",
		"NF_WAITING_FOR_FT",
	}
	if len(want) != numStatus {
		t.Fatalf("numStatus = %d, want %d", numStatus, len(want))
	}
	for code, name := range want {
		if got := Status(code).String(); got != name {
			t.Errorf("Status(%d) = %q, want %q", code, got, name)
		}
	}
	if got := Status(15).String(); got != "Status(15)" {
		t.Errorf("Status(15) = %q", got)
	}
}

func TestStatusMessageMatchesONVMNFText(t *testing.T) {
	// ONVM-COMPAT.md §1.6 step 4 (onvm_nflib_start_nf).
	tests := []struct {
		s    Status
		want string
	}{
		{StatusStarting, ""},
		{StatusIDConflict, "Selected ID already in use. Exiting..."},
		{StatusServiceMax, "Service ID must be less than 32"},
		{StatusServiceCountMax, "Maximum amount of NF's per service spawned, must be less than 32"},
		{StatusNoIDs, "There are no ids available for this NF"},
		{StatusNoCores, "There are no cores available for this NF"},
		{StatusNoDedicatedCores, "There is no space to assign a dedicated core, or the selected core has NFs running"},
		{StatusCoreOutOfRange, "Requested core is not enabled or not in range"},
		{StatusCoreBusy, "Requested core is busy"},
		{StatusWaitingForID, "Error occurred during manager initialization"},
		{StatusRunning, "Error occurred during manager initialization"},
		{StatusWaitingForFT, "Error occurred during manager initialization"},
		{Status(200), "Error occurred during manager initialization"},
	}
	for _, tt := range tests {
		if got := StatusMessage(tt.s); got != tt.want {
			t.Errorf("StatusMessage(%v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestONVMMsgCodesAreONVMs(t *testing.T) {
	// ONVM-COMPAT.md §2.6.
	want := []string{
		"MSG_NOOP", "MSG_STOP", "MSG_NF_STARTING", "MSG_NF_STOPPING", "MSG_NF_READY",
		"MSG_SCALE", "MSG_FROM_NF", "MSG_REQUEST_LPM_REGION", "MSG_CHANGE_CORE", "MSG_REQUEST_FT",
	}
	for code, name := range want {
		if got := ONVMMsg(code).String(); got != name {
			t.Errorf("ONVMMsg(%d) = %q, want %q", code, got, name)
		}
	}
}

func TestONVMLimits(t *testing.T) {
	// ONVM-COMPAT.md §2.1; the registry and the argument parser depend on them.
	if MaxNFs != 128 || MaxServices != 32 || MaxNFsPerService != 32 || TagSize != 15 ||
		PktLimitMultiplier != 1_000_000 {
		t.Fatal("an ONVM limit changed")
	}
}
