package onvmstats

import (
	"strconv"
	"time"
)

// Event is one element of ../onvm_web/onvm_json_events.json (ONVM: onvm_stats_add_event).
// The constructors below build the four kinds ONVM emits; other sources may be built by hand.
type Event struct {
	// Time is when the event happened, printed as strftime "%F %T" in its own location.
	Time time.Time
	// Message is the "message" string, such as MsgNFReady.
	Message string
	// Source is the "source" object's members, in order.
	Source []Field
}

// Field is one member of an event's "source" object: a string or a number.
type Field struct {
	// Key is the member name.
	Key string
	// IsNum selects the value: Num if set, else Str.
	IsNum bool
	// Str is the value; valid iff !IsNum.
	Str string
	// Num is the value; valid iff IsNum.
	Num int64
}

// StrField returns a string member.
func StrField(key, v string) Field { return Field{Key: key, Str: v} }

// NumField returns a number member.
func NumField(key string, v int64) Field { return Field{Key: key, IsNum: true, Num: v} }

// CoreEvent returns an event whose source is {"core": core} (ONVM_EVENT_WITH_CORE), used for
// MsgMgrStart, MsgRxStart and MsgTxStart. [quirk] not copied: ONVM passes a uint16_t core
// and reads it back through an int pointer, so its JSON may show garbage in the high bytes;
// Reinforce prints the core.
func CoreEvent(t time.Time, msg string, core int) Event {
	return Event{Time: t, Message: msg, Source: []Field{NumField("core", int64(core))}}
}

// PortEvent returns "Port <id> initialized" with source {"type": "MGR"}
// (ONVM_EVENT_PORT_INFO, onvm_init.c). The message is cut to 21 bytes like ONVM's 22-byte
// buffer, which only port IDs of 10000 and up reach.
func PortEvent(t time.Time, portID uint16) Event {
	msg := cLabel("Port "+strconv.Itoa(int(portID))+" initialized", portEventMsgSize)
	return Event{Time: t, Message: msg, Source: []Field{StrField("type", "MGR")}}
}

// NFEvent returns an event whose source is {"type": tag, "instance_id", "service_id",
// "core"} (ONVM_EVENT_NF_INFO), used for MsgNFStarting and MsgNFReady. An empty tag is
// written as "NF", as ONVM does for a NULL tag. The IDs go through (int16_t) as in ONVM.
func NFEvent(t time.Time, msg string, nf NF) Event {
	tag := nf.Tag
	if tag == "" {
		tag = "NF"
	}
	return Event{Time: t, Message: msg, Source: []Field{
		StrField("type", tag),
		NumField("instance_id", int64(int16(nf.Instance))),
		NumField("service_id", int64(int16(nf.Service))),
		NumField("core", int64(int16(nf.Core))),
	}}
}

// NFStopEvent returns MsgNFStopping with source {"type": "NF", "instance_id": instance}
// (ONVM_EVENT_NF_STOP, onvm_nf.c).
func NFStopEvent(t time.Time, instance uint16) Event {
	return Event{Time: t, Message: MsgNFStopping, Source: []Field{
		StrField("type", "NF"),
		NumField("instance_id", int64(int16(instance))),
	}}
}

// EventsJSON renders events, oldest first, as ../onvm_web/onvm_json_events.json: cJSON_Print
// of an array of {"timestamp", "message", "source"} objects, followed by the "\n" that
// onvm_stats_display_all adds, so the returned bytes are the whole file. ONVM rewrites the
// file every period with every event since start (the array is never trimmed). It returns a
// caller-owned slice and is safe from any goroutine.
func EventsJSON(events []Event) []byte {
	arr := jsonNode{kind: jsonArray, kids: make([]jsonNode, len(events))}
	for i, e := range events {
		src := jsonObj("source")
		src.kids = make([]jsonNode, len(e.Source))
		for j, f := range e.Source {
			if f.IsNum {
				src.kids[j] = jsonNum(f.Key, float64(f.Num))
			} else {
				src.kids[j] = jsonStr(f.Key, f.Str)
			}
		}
		arr.kids[i] = jsonObj("",
			jsonStr("timestamp", e.Time.Format(layoutFT)),
			jsonStr("message", e.Message),
			src,
		)
	}
	b := appendCJSON(nil, &arr, 0)
	return append(b, '\n')
}
