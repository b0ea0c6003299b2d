package afpacket

// Opening a port, in order. Each step that acquires something leaves it in
// the Port, so New's failure path (release) undoes exactly what was done.
//
//	RX socket, protocol 0 (receives nothing yet) → interface index, MTU and
//	hardware type (ioctls on it) → TPACKET_V3 → PACKET_IGNORE_OUTGOING →
//	RX ring → mmap → bind to the interface with ETH_P_ALL (frames start to
//	arrive, into the ring) → promiscuous membership
//	TX socket, protocol 0 → send buffer → qdisc bypass → bind to the
//	interface with protocol 0 (so it never receives)
//
// Binding last keeps frames of other interfaces out of the ring: a packet
// socket created with a protocol receives from every interface until bound.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/reinforce-nfv/reinforce/pkt"
	"golang.org/x/sys/unix"
)

// open acquires the sockets and the ring for p.iface, as listed above.
func (p *Port) open() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rx socket: %w", err)
	}
	p.rxFD = fd
	hw, err := p.queryLink()
	if err != nil {
		return err
	}
	if hw != unix.ARPHRD_ETHER && hw != unix.ARPHRD_LOOPBACK {
		return fmt.Errorf("hardware type %d: not Ethernet", hw)
	}
	p.ether = hw == unix.ARPHRD_ETHER
	if need := blockDescBytes + frameOverheadBytes + pkt.EthHeaderBytes + pkt.VLANTagBytes + p.mtu; p.cfg.BlockBytes < need {
		return fmt.Errorf("block size %d: below the %d bytes a frame of MTU %d needs", p.cfg.BlockBytes, need, p.mtu)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("set TPACKET_V3: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fmt.Errorf("set PACKET_IGNORE_OUTGOING: %w", err)
	}
	tov := (p.cfg.BlockTimeout + time.Millisecond - 1) / time.Millisecond // in whole ms, rounded up
	req := unix.TpacketReq3{
		Block_size:     uint32(p.cfg.BlockBytes),
		Block_nr:       uint32(p.cfg.Blocks),
		Frame_size:     rxFrameBytes,
		Frame_nr:       uint32(p.cfg.Blocks * (p.cfg.BlockBytes / rxFrameBytes)),
		Retire_blk_tov: uint32(max(tov, 1)),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("set rx ring (%d × %d bytes): %w", req.Block_nr, req.Block_size, err)
	}
	mem, err := unix.Mmap(fd, 0, p.cfg.Blocks*p.cfg.BlockBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap rx ring: %w", err)
	}
	p.ring = rxRing{mem: mem, blockBytes: uint32(p.cfg.BlockBytes), blocks: uint32(p.cfg.Blocks)}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: p.index}); err != nil {
		return fmt.Errorf("bind rx socket: %w", err)
	}
	if !p.cfg.NoPromisc {
		mreq := unix.PacketMreq{Ifindex: int32(p.index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fmt.Errorf("set promiscuous: %w", err)
		}
	}

	if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("tx socket: %w", err)
	}
	p.txFD = fd
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, p.cfg.SndBufBytes); err != nil {
		if !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set send buffer: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, p.cfg.SndBufBytes); err != nil {
			return fmt.Errorf("set send buffer: %w", err)
		}
	}
	if p.cfg.QdiscBypass {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fmt.Errorf("set qdisc bypass: %w", err)
		}
	}
	// Protocol 0: bound to the interface for sending, but no receive hook.
	// The kernel takes each frame's protocol from its EtherType
	// (packet_parse_headers).
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: p.index}); err != nil {
		return fmt.Errorf("bind tx socket: %w", err)
	}
	return nil
}

// queryLink reads p.iface's index and MTU into p and returns its hardware
// type (ARPHRD_*), with ioctls on the RX socket (which resolve the name in
// the socket's network namespace).
func (p *Port) queryLink() (hwType uint16, err error) {
	get := func(req uint) (*unix.Ifreq, error) {
		ifr, err := unix.NewIfreq(p.iface)
		if err != nil {
			return nil, fmt.Errorf("interface name %q: %w", p.iface, err)
		}
		if err := unix.IoctlIfreq(p.rxFD, req, ifr); err != nil {
			return nil, fmt.Errorf("interface %s: %w", p.iface, err)
		}
		return ifr, nil
	}
	ifr, err := get(unix.SIOCGIFINDEX)
	if err != nil {
		return 0, err
	}
	p.index = int(int32(ifr.Uint32()))
	if ifr, err = get(unix.SIOCGIFMTU); err != nil {
		return 0, err
	}
	p.mtu = int(int32(ifr.Uint32()))
	if p.mtu <= 0 || p.mtu > pkt.MaxFrameBytes {
		return 0, fmt.Errorf("interface %s: MTU %d", p.iface, p.mtu)
	}
	if ifr, err = get(unix.SIOCGIFHWADDR); err != nil {
		return 0, err
	}
	if ifi, err := net.InterfaceByIndex(p.index); err == nil {
		p.hw = ifi.HardwareAddr // the manager runs in the interface's namespace
	}
	return ifr.Uint16(), nil // ifr_hwaddr.sa_family
}

// htons converts v to network byte order, as sockaddr_ll's protocol wants.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
