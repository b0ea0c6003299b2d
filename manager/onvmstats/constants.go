package onvmstats

// Constants fixed by ONVM v21.10 (onvm/onvm_mgr/onvm_stats.h and onvm_stats.c). The text is
// copied byte for byte; a change here changes what ONVM users' scripts and the web console see.
const (
	// ONVM: "PORTS\n-----\n" (PORT_MSG[0], PORT_MSG[1] in onvm_stats_display_ports).
	portsHeading = "PORTS\n-----\n"

	// ONVM: onvm_stats_clear_terminal, ESC[2J ESC[1;1H.
	clearScreen = "\x1b[2J\x1b[1;1H"

	// ONVM: ONVM_STATS_MSG (level 1). It starts with a blank line.
	nfHeaderLevel1 = "\n" +
		"NF TAG         IID / SID / CORE    rx_pps  /  tx_pps        rx_drop  /  tx_drop           out   /    tonf     /   drop\n" +
		dashes

	// ONVM: ONVM_STATS_ADV_MSG (level 2).
	nfHeaderLevel2 = "\n" +
		nfHeaderLevel2Line1 +
		nfHeaderLevel2Line2 +
		dashes

	// ONVM: ONVM_STATS_SHARED_CORE_MSG (level 2 with -c).
	nfHeaderLevel2Shared = "\n" +
		nfHeaderLevel2Line1 +
		nfHeaderLevel2Line2 +
		"                                  wakeups  /  wakeup_rt\n" +
		dashes

	nfHeaderLevel2Line1 = "NF TAG         IID / SID / CORE    rx_pps  /  tx_pps             rx  /  tx                out   /    tonf     /   drop\n"
	nfHeaderLevel2Line2 = "               PNT / S|W / CHLD  drop_pps  /  drop_pps      rx_drop  /  tx_drop           next  /    buf      /   ret\n"

	dashes = "----------------------------------------------------------------------------------------------------------------------\n"

	// ONVM: "\nService id totals\n-----------------\n" in onvm_stats_display_nfs.
	serviceTotalsHeading = "\nService id totals\n-----------------\n"

	// ONVM: "\n\nShared core stats\n-----------------\n" in onvm_stats_display_nfs.
	sharedCoreHeading = "\n\nShared core stats\n-----------------\n"

	// ONVM: ONVM_STATS_RAW_DUMP_PORT_MSG and ONVM_STATS_RAW_DUMP_NF_MSG. The date is a literal
	// placeholder, not a timestamp.
	rawHeader = "#YYYY-MM-DD HH:MM:SS,nic_rx_pkts,nic_rx_pps,nic_tx_pkts,nic_tx_pps\n" +
		"#YYYY-MM-DD HH:MM:SS,nf_tag,instance_id,service_id,core,parent,state,children_cnt," +
		"rx,tx,rx_pps,tx_pps,rx_drop,tx_drop,rx_drop_rate,tx_drop_rate," +
		"act_out,act_tonf,act_drop,act_next,act_buffer,act_returned,num_wakeups,wakeup_rate\n"
)

// printf formats, translated from the C macros in onvm_stats.h. C's %u and %"PRIu64" become %d
// (Go prints unsigned types as unsigned), PRId16 becomes %d. The NF tag's "%-14s" is not here:
// C pads by bytes and Go by runes, so appendTag pads it by hand.
const (
	// ONVM: ONVM_STATS_REG_PORTS.
	fmtPort = "Port %d - rx: %9d  (%9d pps)\ttx: %9d  (%9d pps)\n"

	// ONVM: "Port %u: '%s'\t", one per port before the counters.
	fmtPortMAC = "Port %d: '%s'\t"

	// ONVM: ONVM_STATS_REG_CONTENT after the tag. Note the space before the newline.
	fmtNFLevel1 = " %2d  /  %-2d / %2d    %9d / %-9d   %11d / %-11d  %11d / %-11d / %-11d \n"

	// ONVM: ONVM_STATS_ADV_CONTENT after the tag: two rows.
	fmtNFLevel2 = " %2d  /  %-2d / %2d    %9d / %-9d   %11d / %-11d  %11d / %-11d / %-11d\n" +
		"            %5d  /  %c  /  %d    %9d / %-9d   %11d / %-11d  %11d / %-11d / %-11d\n"

	// ONVM: ONVM_STATS_SHARED_CORE_CONTENT.
	fmtNFShared = "                               %11d / %-11d\n"

	// ONVM: ONVM_STATS_REG_TOTALS.
	fmtTotalsLevel1 = "SID %-2d %2d%s -                   %9d / %-9d   %11d / %-11d  %11d / %-11d / %-11d\n"

	// ONVM: ONVM_STATS_ADV_TOTALS.
	fmtTotalsLevel2 = "SID %-2d %2d%s -                   %9d / %-9d   %11d / %-11d  %11d / %-11d / %-11d\n" +
		"                                 %9d / %-9d   %11d / %-11d  %11d / %-11d / %-11d\n"

	// ONVM: "Total wakeups = %"PRIu64", Wakeup rate = %"PRIu64"\n".
	fmtSharedTotals = "Total wakeups = %d, Wakeup rate = %d\n"

	// ONVM: ONVM_STATS_RAW_DUMP_PORTS_CONTENT.
	fmtRawPort = "%s,%d,%d,%d,%d,%d\n"

	// ONVM: ONVM_STATS_RAW_DUMP_CONTENT.
	fmtRawNF = "%s,%s,%d,%d,%d,%d,%c,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d\n"
)

// Time formats and C buffer sizes.
const (
	// ONVM: strftime(buffer, 20, "%F %T", localtime(...)) for raw rows and event timestamps.
	layoutFT = "2006-01-02 15:04:05"

	// ONVM: ctime(), "Www Mmm dd hh:mm:ss yyyy\n" with the day padded by a space.
	layoutCtime = "Mon Jan _2 15:04:05 2006"

	// ONVM: ONVM_SNPRINTF(nf_label, 6, "NF %d", i): at most 5 characters survive.
	nfLabelSize = 6

	// ONVM: ONVM_SNPRINTF(port_label, 8, "Port %d", i).
	portLabelSize = 8

	// ONVM: char event_msg_buf[22] for "Port %d initialized" in onvm_init.c.
	portEventMsgSize = 22
)

// Verbosity levels of -v (ONVM: onvm_args.c, ONVM_RAW_STATS_DUMP).
const (
	// LevelNormal is -v 1, the default: one row per NF.
	LevelNormal = 1
	// LevelVerbose is -v 2: two (three with -c) rows per NF.
	LevelVerbose = 2
	// LevelRaw is -v 3 (ONVM_RAW_STATS_DUMP): CSV rows, no headings.
	LevelRaw = 3
)

// Event messages the ONVM manager emits (§1.11 table; onvm_init.c, main.c, onvm_nf.c).
const (
	// MsgMgrStart is sent by the master thread with its core.
	MsgMgrStart = "MGR Start"
	// MsgRxStart is sent by the RX thread with its core.
	MsgRxStart = "Rx Start"
	// MsgTxStart is sent by each TX thread with its core.
	MsgTxStart = "Tx Start"
	// MsgNFStarting is sent when an NF's start message is accepted.
	MsgNFStarting = "NF Starting"
	// MsgNFReady is sent when an NF reports ready.
	MsgNFReady = "NF Ready"
	// MsgNFStopping is sent when an NF has been stopped.
	MsgNFStopping = "NF Stopping"
)
