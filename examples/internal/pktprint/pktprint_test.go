package pktprint

import (
	"testing"
)

// eth is an Ethernet header with EtherType IPv4.
var eth = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,
}

func udpPacket() []byte {
	ip := []byte{
		0x45, 0x00, 0x00, 0x1c, // IHL 5, TOS 0, total length 28
		0x12, 0x34, 0x40, 0x00, // ID 0x1234, DF
		0x40, 17, 0xab, 0xcd, // TTL 64, UDP, checksum
		10, 0, 0, 1, // 10.0.0.1
		10, 0, 0, 2, // 10.0.0.2
	}
	udp := []byte{0x30, 0x39, 0xd4, 0x31, 0x00, 0x08, 0x00, 0x00} // 12345 → 54321, length 8
	return append(append(append([]byte{}, eth...), ip...), udp...)
}

func tcpPacket() []byte {
	ip := []byte{
		0x45, 0xb8, 0x00, 0x28, // TOS 0xb8 (DSCP 46 on the wire), total length 40
		0x00, 0x01, 0x00, 0x40, // fragment word 0x0040: offset 64, no flags on the wire
		0x01, 6, 0x00, 0x00,
		192, 168, 1, 2,
		192, 168, 1, 3,
	}
	tcp := []byte{
		0x00, 0x50, 0x04, 0xd2, // 80 → 1234
		0, 0, 0, 1, // seq
		0, 0, 0, 2, // ack
		0x50, 0x12, // data offset 5, SYN+ACK
		0xff, 0xff, 0x12, 0x34, 0x00, 0x00, // window, checksum, urgent pointer
	}
	return append(append(append([]byte{}, eth...), ip...), tcp...)
}

func TestAppendStdMatchesONVM(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{
			name: "udp",
			data: udpPacket(),
			// onvm_pkt_print_ipv4's quirks on x86: the DF bit shows as no flags
			// (the shift reads the wrong byte), no ")" on the flags line, the
			// checksum and addresses unswapped.
			want: "\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 42\nN°   : 1000000\n\n\n" +
				"IHL: 5\nDSCP: 0\nECN: 0\nTotal Length: 28\nIdentification: 4660\nFlags: 0\n\t(\n" +
				"Fragment Offset: 0\nTTL: 64\nProtocol: 17 (UDP)\nHeader Checksum: 52651\n" +
				"Source IP: 16777226 (10.0.0.1)\nDestination IP: 33554442 (10.0.0.2)\n" +
				"Source Port: 12345\nDestination Port: 54321\nLength: 8\nChecksum: 0\n",
		},
		{
			name: "tcp",
			data: tcpPacket(),
			want: "\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 54\nN°   : 1000000\n\n\n" +
				"IHL: 5\nDSCP: 56\nECN: 2\nTotal Length: 40\nIdentification: 1\nFlags: 2\n\t(DF,\n" +
				"Fragment Offset: 64\nTTL: 1\nProtocol: 6 (TCP)\nHeader Checksum: 0\n" +
				"Source IP: 33663168 (192.168.1.2)\nDestination IP: 50440384 (192.168.1.3)\n" +
				"Source Port: 80\nDestination Port: 1234\nSequence number: 1\nAcknowledgement number: 2\n" +
				"Data offset: 80\nFlags: 12\n\t(ACK,SYN,)\nWindow Size: 65535\nChecksum: 4660\nUrgent Pointer: 0\n",
		},
		{
			name: "not ipv4",
			data: append(append([]byte{}, eth...), 0x60, 0, 0, 0),
			want: "\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 18\nN°   : 1000000\n\n\nNo IP4 header found\n",
		},
		{
			name: "ipv4 header cut short",
			data: udpPacket()[:33],
			want: "\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 33\nN°   : 1000000\n\n\nNo IP4 header found\n",
		},
		{
			name: "udp header cut short prints the ipv4 part",
			data: udpPacket()[:40],
			want: "\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 40\nN°   : 1000000\n\n\n" +
				"IHL: 5\nDSCP: 0\nECN: 0\nTotal Length: 28\nIdentification: 4660\nFlags: 0\n\t(\n" +
				"Fragment Offset: 0\nTTL: 64\nProtocol: 17 (UDP)\nHeader Checksum: 52651\n" +
				"Source IP: 16777226 (10.0.0.1)\nDestination IP: 33554442 (10.0.0.2)\n",
		},
		{name: "empty", data: nil,
			want: "\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 0\nN°   : 1000000\n\n\nNo IP4 header found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendStd(nil, 1, uint32(len(tt.data)), 1000000, tt.data))
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestAppendPaddedIsPrintfWidth(t *testing.T) {
	tests := []struct {
		v     uint64
		width int
		want  string
	}{
		{0, 9, "        0"},
		{123456789, 9, "123456789"},
		{1234567890, 9, "1234567890"},
		{42, 6, "    42"},
		{7, 0, "7"},
		{1<<64 - 1, 0, "18446744073709551615"},
	}
	for _, tt := range tests {
		if got := string(AppendPadded([]byte("x"), tt.v, tt.width)); got != "x"+tt.want {
			t.Errorf("AppendPadded(%d, %d) = %q, want %q", tt.v, tt.width, got, "x"+tt.want)
		}
	}
}

func TestAppendStdDoesNotAllocate(t *testing.T) {
	tcp := tcpPacket()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendStd(buf[:0], 0, uint32(len(tcp)), 1<<40, tcp)
	}); n != 0 {
		t.Errorf("AppendStd allocates %v times per call", n)
	}
}
