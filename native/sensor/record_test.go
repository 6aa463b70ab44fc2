package main

import (
	"encoding/binary"
	"encoding/json"
	"testing"
)

func TestAppendExe(t *testing.T) {
	for _, c := range []struct{ rev, want string }{
		{"true/bin/usr/", "/usr/bin/true"},
		{"memfd:x/", "/memfd:x"},
		{"", "/"},
		{"a\x00junk", "/a"},
	} {
		if got := string(appendExe(nil, []byte(c.rev))); got != `"`+c.want+`"` {
			t.Errorf("appendExe(%q) = %s, want %q", c.rev, got, c.want)
		}
	}
}

func TestJSONStrings(t *testing.T) {
	in := []byte("a\"b\\c\n\x01é\xff")
	var got string
	if err := json.Unmarshal(appendJSONString(nil, in), &got); err != nil {
		t.Fatal(err)
	}
	if got != "a\"b\\c\n\x01é\ufffd" {
		t.Errorf("got %q", got)
	}
}

func TestRecords(t *testing.T) {
	r := make([]byte, netSize)
	binary.LittleEndian.PutUint32(r, kindConnect)
	binary.LittleEndian.PutUint32(r[4:], 42)
	binary.LittleEndian.PutUint32(r[8:], 1000)
	binary.LittleEndian.PutUint64(r[16:], 7)
	copy(r[24:], "nc")
	binary.LittleEndian.PutUint16(r[40:], 10)
	binary.LittleEndian.PutUint16(r[42:], 443)
	copy(r[48:], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4})
	if got := string(appendRecord(nil, r)); got != `["connect",42,1000,7,"nc","::ffff:1.2.3.4",443]`+"\n" {
		t.Errorf("connect: %s", got)
	}
	e := make([]byte, execSize)
	binary.LittleEndian.PutUint32(e, kindExec)
	binary.LittleEndian.PutUint32(e[48:], 2) // argc
	binary.LittleEndian.PutUint32(e[52:], flagArgvMore|flagUpper|flagExeWhole)
	copy(e[offArgs:], "sh")
	copy(e[offArgs+strLen:], "-c")
	copy(e[offFile:], "/bin/sh")
	copy(e[offExe:], "busybox/bin/")
	binary.LittleEndian.PutUint32(e[56:], 12)
	var tuple []any
	if err := json.Unmarshal(appendRecord(nil, e), &tuple); err != nil {
		t.Fatal(err)
	}
	if len(tuple) != 17 || tuple[11] != "/bin/sh" || tuple[13] != 1.0 || tuple[14] != "/bin/busybox" || tuple[15] != 1.0 || tuple[16] != 0.0 {
		t.Errorf("exec: %v", tuple)
	}
	binary.LittleEndian.PutUint32(e[52:], 0) // the walk stopped short
	if err := json.Unmarshal(appendRecord(nil, e), &tuple); err != nil || tuple[14] != "" {
		t.Errorf("a cut path must be empty: %v %v", tuple, err)
	}
	if short := appendRecord([]byte("x"), r[:hdrSize]); string(short) != "x" {
		t.Errorf("a short record must write nothing: %q", short)
	}
}
