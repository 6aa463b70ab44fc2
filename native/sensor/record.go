package main

import (
	"bytes"
	"encoding/binary"
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

	kindExec = 1

	flagArgvMore = 1
	flagUpper    = 2
	flagDeleted  = 4
)

var le = binary.LittleEndian

// appendRecord appends one record as a JSON line: for an exec
// ["exec",pid,oldPid,ppid,uid,cgroup,comm,euid,mode0,mode1,ns,path,[argv…],argvMore,exe,upper,deleted].
// The first eleven fields are bpftrace's exec tuple (probes.bt), so the decoder reads both.
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
		b = appendExe(b, r[offExe:offExe+int(min(le.Uint32(r[56:]), 512))])
		b = append(b, ',')
		b = appendBit(b, flags&flagUpper)
		b = append(b, ',')
		b = appendBit(b, flags&flagDeleted)
		b = append(b, "]\n"...)
	}
	return b
}

func appendBit(b []byte, v uint32) []byte {
	if v != 0 {
		return append(b, '1')
	}
	return append(b, '0')
}

// appendExe turns "true/bin/usr/" (leaf first, as the kernel walked it) into "/usr/bin/true".
func appendExe(b []byte, rev []byte) []byte {
	var path []byte
	for len(rev) > 0 {
		i := bytes.IndexByte(rev, '/')
		if i < 0 {
			i = len(rev)
		}
		comp := rev[:i]
		if n := bytes.IndexByte(comp, 0); n >= 0 {
			comp = comp[:n]
		}
		path = append(append(append([]byte{}, '/'), comp...), path...)
		if i == len(rev) {
			break
		}
		rev = rev[i+1:]
	}
	if len(path) == 0 {
		path = []byte{'/'}
	}
	return appendJSONString(b, path)
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
