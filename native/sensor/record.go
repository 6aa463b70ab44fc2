package main

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"unicode/utf8"
)

// Layout of struct exec_rec in sensor.bpf.c (little-endian, as the kernel writes it).
const (
	strLen    = 160
	argvSlots = 6
	offComm   = 64
	offFile   = offComm + 16
	offArgs   = offFile + strLen
	offExe    = offArgs + argvSlots*strLen
	execSize  = offExe + 512

	kindExec    = 1
	kindExit    = 2
	kindConnect = 3
	kindAccept  = 4
	kindBind    = 5
	kindListen  = 6
	kindOpen    = 7
	kindSetid   = 8
	kindPtrace  = 9
	kindModule  = 10

	// struct hdr, then the kind's fields.
	hdrSize  = 40
	netSize  = hdrSize + 24
	openSize = hdrSize + 8 + strLen
	miscSize = hdrSize + 8

	flagArgvMore = 1
	flagUpper    = 2
	flagDeleted  = 4
	flagExeWhole = 8
)

var le = binary.LittleEndian

var kindNames = map[uint32]string{
	kindExit: "exit", kindConnect: "connect", kindAccept: "accept", kindBind: "bind",
	kindListen: "listen", kindOpen: "open", kindSetid: "setid", kindPtrace: "ptrace", kindModule: "module",
}

// enum syscall_code in sensor.bpf.c.
var syscallNames = map[uint32]string{
	1: "setuid", 2: "setgid", 3: "setreuid", 4: "setresuid", 5: "finit_module", 6: "init_module",
}

// appendRecord appends one record as a JSON line: for an exec
// ["exec",pid,oldPid,ppid,uid,cgroup,comm,euid,mode0,mode1,ns,path,[argv…],argvMore,exe,upper,deleted];
// exe is "" when the kernel side could not give it whole.
// The first eleven fields are the exec tuple of the bpftrace engine this replaced.
func appendRecord(b []byte, r []byte) []byte {
	if len(r) < 4 {
		return b
	}
	switch le.Uint32(r) {
	case kindExec:
		if len(r) < execSize {
			return b
		}
		b = append(b, `["exec",`...)
		b = strconv.AppendUint(b, uint64(le.Uint32(r[4:])), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[8:])), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[12:])), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[16:])), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, le.Uint64(r[24:]), 10)
		b = append(b, ',')
		b = appendCString(b, r[offComm:offComm+16])
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[20:])), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[40:])), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[44:])), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, le.Uint64(r[32:]), 10)
		b = append(b, ',')
		b = appendCString(b, r[offFile:offFile+strLen])
		b = append(b, ",["...)
		argc := int(le.Uint32(r[48:]))
		if argc > argvSlots {
			argc = argvSlots
		}
		for i := 0; i < argc; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCString(b, r[offArgs+i*strLen:offArgs+(i+1)*strLen])
		}
		flags := le.Uint32(r[52:])
		b = append(b, "],"...)
		b = appendBit(b, flags&flagArgvMore)
		b = append(b, ',')
		if flags&flagExeWhole != 0 {
			b = appendExe(b, r[offExe:offExe+int(min(le.Uint32(r[56:]), 512))])
		} else {
			b = append(b, `""`...) // no executable, or its path was cut: the agent reads /proc
		}
		b = append(b, ',')
		b = appendBit(b, flags&flagUpper)
		b = append(b, ',')
		b = appendBit(b, flags&flagDeleted)
		b = append(b, "]\n"...)
		return b
	}
	// The other kinds: (kind, pid, uid, cgroup, comm, …) — exit has no uid.
	kind := le.Uint32(r)
	name, ok := kindNames[kind]
	if !ok || len(r) < hdrSize {
		return b
	}
	start := len(b)
	b = append(b, `["`...)
	b = append(b, name...)
	b = append(b, `",`...)
	b = strconv.AppendUint(b, uint64(le.Uint32(r[4:])), 10)
	b = append(b, ',')
	if kind != kindExit {
		b = strconv.AppendUint(b, uint64(le.Uint32(r[8:])), 10)
		b = append(b, ',')
	}
	b = strconv.AppendUint(b, le.Uint64(r[16:]), 10)
	b = append(b, ',')
	b = appendCString(b, r[24:40])
	switch kind {
	case kindConnect, kindAccept, kindBind, kindListen:
		if len(r) < netSize {
			return b[:start]
		}
		b = append(b, ',')
		b = appendJSONString(b, []byte(ntop(le.Uint16(r[40:]), r[48:64])))
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint16(r[42:])), 10)
	case kindOpen:
		if len(r) < openSize {
			return b[:start]
		}
		b = append(b, ',')
		b = appendCString(b, r[48:48+strLen])
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[40:])), 10)
	case kindSetid, kindModule:
		if len(r) < miscSize {
			return b[:start]
		}
		b = append(b, ',')
		b = appendJSONString(b, []byte(syscallNames[le.Uint32(r[40:])]))
		if kind == kindSetid {
			b = append(b, ",0"...)
		}
	case kindPtrace:
		if len(r) < miscSize {
			return b[:start]
		}
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(int32(le.Uint32(r[40:]))), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(le.Uint32(r[44:])), 10)
	}
	return append(b, "]\n"...)
}

// ntop formats an address as inet_ntop does (bpftrace's ntop); "" for none (an accept whose
// caller asked for no peer address).
func ntop(family uint16, addr []byte) string {
	switch family {
	case 2:
		return netip.AddrFrom4([4]byte(addr[:4])).String()
	case 10:
		return netip.AddrFrom16([16]byte(addr[:16])).String()
	}
	return ""
}

func appendBit(b []byte, v uint32) []byte {
	if v != 0 {
		return append(b, '1')
	}
	return append(b, '0')
}

// appendExe turns "true/bin/usr/" (leaf first, as the kernel walked it) into "/usr/bin/true",
// without allocating: components are taken from the end of rev and written in order.
func appendExe(b []byte, rev []byte) []byte {
	if n := bytes.IndexByte(rev, 0); n >= 0 {
		rev = rev[:n]
	}
	rev = bytes.TrimSuffix(rev, []byte{'/'})
	var path [512]byte
	out := path[:0]
	for len(rev) > 0 {
		i := bytes.LastIndexByte(rev, '/')
		out = append(out, '/')
		out = append(out, rev[i+1:]...)
		if i < 0 {
			break
		}
		rev = rev[:i]
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	return appendJSONString(b, out)
}

func appendCString(b []byte, s []byte) []byte {
	if n := bytes.IndexByte(s, 0); n >= 0 {
		s = s[:n]
	}
	return appendJSONString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string; bytes that are not UTF-8 become U+FFFD.
func appendJSONString(b []byte, s []byte) []byte {
	b = append(b, '"')
	for len(s) > 0 {
		c := s[0]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[:size]...)
		}
		s = s[size:]
	}
	return append(b, '"')
}

type byteReader struct {
	*bytes.Reader
}

func bytesReader(p []byte) byteReader { return byteReader{bytes.NewReader(p)} }
