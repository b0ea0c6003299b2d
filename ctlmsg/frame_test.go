package ctlmsg

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// sampleMsgs holds one message of every type with every field set, so the
// round-trip test notices a field that does not survive the wire.
func sampleMsgs() []Msg {
	return []Msg{
		Register{Service: 1, Instance: 7, Tag: "simple_forward", PID: 4242, ManualCore: true, Core: 3,
			ShareCore: true, Standby: true, TTLSeconds: 60, PktLimitMillions: 5},
		RegisterReply{Status: StatusStarting, Message: "ok", Instance: 7, RegionPath: "/dev/shm/reinforce-a",
			RegionName: "a", Burst: 32, Rings: []RingRef{{Role: RoleRX, Peer: "manager", Index: 3},
				{Role: RoleTX, Peer: "nf2", Index: 4}}, SharedCPU: true, Owner: 9},
		Ready{},
		Running{},
		Stop{Reason: "operator"},
		Stopping{},
		Promote{},
		Error{Text: "region name mismatch"},
		Request{Cmd: "kill", Args: []string{"7"}},
		Response{OK: true, Data: json.RawMessage(`{"nfs":[1,2]}`)},
	}
}

// frame builds a frame by hand, so tests can produce what WriteMsg refuses to.
func frame(t Type, body string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(1+len(body)))
	b = append(b, byte(t))
	return append(b, body...)
}

func TestMsgRoundTripEveryType(t *testing.T) {
	for _, m := range sampleMsgs() {
		t.Run(m.Type().String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMsg(&buf, m); err != nil {
				t.Fatalf("WriteMsg: %v", err)
			}
			got, err := ReadMsg(&buf)
			if err != nil {
				t.Fatalf("ReadMsg: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes left after one frame", buf.Len())
			}
		})
	}
}

func TestWriteMsgAcceptsPointers(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMsg(&buf, &Stop{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMsg(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got != (Stop{Reason: "x"}) {
		t.Fatalf("got %#v", got)
	}
}

func TestWriteMsgFrameLayout(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMsg(&buf, Ready{}); err != nil {
		t.Fatal(err)
	}
	want := []byte{3, 0, 0, 0, byte(TypeReady), '{', '}'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frame = %v, want %v", buf.Bytes(), want)
	}
}

func TestWriteMsgRejected(t *testing.T) {
	tests := []struct {
		name string
		m    Msg
		is   error
	}{
		{"nil interface", nil, nil},
		{"nil pointer", (*Register)(nil), nil},
		{"bad ring role", RegisterReply{Rings: []RingRef{{Role: "up"}}}, ErrBadBody},
		{"unknown status", RegisterReply{Status: 15}, ErrBadBody},
		{"negative burst", RegisterReply{Burst: -1}, ErrBadBody},
		{"invalid raw JSON", Response{Data: json.RawMessage(`{`)}, ErrBadBody},
		{"oversize", Error{Text: strings.Repeat("x", MaxFrameBytes)}, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteMsg(&buf, tt.m)
			if err == nil {
				t.Fatal("WriteMsg succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if buf.Len() != 0 {
				t.Fatalf("WriteMsg wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestWriteMsgLargestFrameReadBack(t *testing.T) {
	// {"text":"…"} is 11 bytes of JSON around the text, plus the type byte.
	m := Error{Text: strings.Repeat("x", maxLen-1-11)}
	var buf bytes.Buffer
	if err := WriteMsg(&buf, m); err != nil {
		t.Fatalf("WriteMsg of a frame of exactly MaxFrameBytes: %v", err)
	}
	if buf.Len() != MaxFrameBytes {
		t.Fatalf("frame is %d bytes, want %d", buf.Len(), MaxFrameBytes)
	}
	if _, err := ReadMsg(&buf); err != nil {
		t.Fatal(err)
	}
	m.Text += "x"
	if err := WriteMsg(&buf, m); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("one byte more: err = %v, want ErrFrameTooLarge", err)
	}
}

func TestReadMsgRejected(t *testing.T) {
	oversize := binary.LittleEndian.AppendUint32(nil, maxLen+1)
	tests := []struct {
		name  string
		input []byte
		is    error
		cause string // substring of the error text, "" to skip
	}{
		{"zero length", []byte{0, 0, 0, 0}, ErrEmptyFrame, ""},
		{"oversize length", append(oversize, byte(TypeReady)), ErrFrameTooLarge, ""},
		{"max uint32 length", []byte{0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge, ""},
		{"type zero", frame(TypeInvalid, "{}"), ErrUnknownType, ""},
		{"type past the last", frame(TypePromote+1, "{}"), ErrUnknownType, ""},
		{"type 255", frame(255, "{}"), ErrUnknownType, ""},
		{"empty body", frame(TypeReady, ""), ErrBadBody, "not a JSON object"},
		{"whitespace body", frame(TypeReady, " \n"), ErrBadBody, "not a JSON object"},
		{"null body", frame(TypeStop, "null"), ErrBadBody, "not a JSON object"},
		{"array body", frame(TypeStop, "[]"), ErrBadBody, "not a JSON object"},
		{"unknown field", frame(TypeRegister, `{"service":1,"colour":"red"}`), ErrBadBody, `unknown field "colour"`},
		{"field on an empty type", frame(TypeReady, `{"x":1}`), ErrBadBody, "unknown field"},
		{"wrong field type", frame(TypeRegister, `{"service":"one"}`), ErrBadBody, ""},
		{"uint16 overflow", frame(TypeRegister, `{"service":70000}`), ErrBadBody, ""},
		{"negative into unsigned", frame(TypeRegister, `{"instance":-1}`), ErrBadBody, ""},
		{"truncated JSON", frame(TypeStop, `{"reason":"x"`), ErrBadBody, ""},
		{"trailing garbage", frame(TypeStop, `{"reason":"x"}garbage`), ErrBadBody, "trailing data"},
		{"two objects", frame(TypeStop, `{} {}`), ErrBadBody, "trailing data"},
		{"trailing brace", frame(TypeStop, `{}}`), ErrBadBody, "trailing data"},
		{"bad ring role", frame(TypeRegisterReply, `{"rings":[{"role":"sideways"}]}`), ErrBadBody, "role"},
		{"status out of range", frame(TypeRegisterReply, `{"status":15}`), ErrBadBody, "status 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMsg(bytes.NewReader(tt.input))
			if err == nil {
				t.Fatalf("ReadMsg accepted it: %#v", m)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Op != "read" {
				t.Fatalf("err = %#v, want a read *FrameError", err)
			}
			if tt.cause != "" && !strings.Contains(err.Error(), tt.cause) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.cause)
			}
		})
	}
}

func TestReadMsgAcceptsSurroundingWhitespace(t *testing.T) {
	m, err := ReadMsg(bytes.NewReader(frame(TypeStop, " \t\r\n{\"reason\": \"x\"}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if m != (Stop{Reason: "x"}) {
		t.Fatalf("got %#v", m)
	}
}

func TestReadMsgCleanEOF(t *testing.T) {
	if _, err := ReadMsg(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF exactly", err)
	}
}

func TestReadMsgTruncatedFrameIsUnexpectedEOF(t *testing.T) {
	full := frame(TypeStop, `{"reason":"x"}`)
	for _, n := range []int{1, 3, 4, 5, len(full) - 1} {
		_, err := ReadMsg(bytes.NewReader(full[:n]))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: err = %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
}

// countingReader records how many bytes were asked of it, to prove that
// ReadMsg never reads past its frame.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadMsgReadsNothingPastItsFrame(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMsg(&buf, Stop{Reason: "a"}); err != nil {
		t.Fatal(err)
	}
	first := buf.Len()
	buf.WriteString("next frame's bytes")
	cr := &countingReader{r: &buf}
	if _, err := ReadMsg(cr); err != nil {
		t.Fatal(err)
	}
	if cr.n != first {
		t.Fatalf("ReadMsg consumed %d bytes, frame is %d", cr.n, first)
	}
}

func TestReadMsgSharesBufioReader(t *testing.T) {
	var buf bytes.Buffer
	msgs := sampleMsgs()
	for _, m := range msgs {
		if err := WriteMsg(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReaderSize(&buf, 16) // smaller than most frames
	for i, want := range msgs {
		got, err := ReadMsg(br)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d: got %#v, want %#v", i, got, want)
		}
	}
	if _, err := ReadMsg(br); err != io.EOF {
		t.Fatalf("after the last frame: err = %v, want io.EOF", err)
	}
}

func TestReadMsgStaysInSyncAfterBadFrame(t *testing.T) {
	var stream []byte
	stream = append(stream, frame(200, `{}`)...)
	stream = append(stream, frame(TypeStop, `{"bogus":1}`)...)
	stream = append(stream, frame(TypeStop, `{"reason":"after"}`)...)
	r := bytes.NewReader(stream)
	if _, err := ReadMsg(r); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("first: %v", err)
	}
	if _, err := ReadMsg(r); !errors.Is(err, ErrBadBody) {
		t.Fatalf("second: %v", err)
	}
	m, err := ReadMsg(r)
	if err != nil || m != (Stop{Reason: "after"}) {
		t.Fatalf("third: %#v, %v", m, err)
	}
}

func TestFrameErrorText(t *testing.T) {
	_, err := ReadMsg(bytes.NewReader(frame(TypeRegister, `{"x":1}`)))
	want := `ctlmsg: read Register frame (length 8): bad message body: json: unknown field "x"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

// errWriter fails every write, to check that WriteMsg wraps the cause.
type errWriter struct{}

var errBroken = errors.New("broken pipe")

func (errWriter) Write([]byte) (int, error) { return 0, errBroken }

func TestWriteMsgWrapsWriterError(t *testing.T) {
	err := WriteMsg(errWriter{}, Ready{})
	if !errors.Is(err, errBroken) {
		t.Fatalf("err = %v, want it to wrap the writer's error", err)
	}
}

func TestTypeNames(t *testing.T) {
	if TypeRegisterReply.String() != "RegisterReply" || Type(99).String() != "Type(99)" {
		t.Fatalf("got %q, %q", TypeRegisterReply, Type(99))
	}
}
