// Command containment-sensor loads the runtime sensor's BPF program (sensor.bpf.c, compiled into
// sensor.bpf.o and embedded) with cilium/ebpf and writes its events to stdout as JSON lines the
// agent's decoder reads (src/runtime/sensor/decode.ts): one array per event, plus bpftrace's
// control messages ({"type":"attached_probes"}, {"type":"lost_events"}) so one decoder serves
// both. Output is batched: after a wake-up the ring is drained, written in one write, and the
// next wait starts only after a short pause, so a busy container costs the agent at most
// ~1/pause wake-ups per second, not one per event.
//
// Usage: containment-sensor <host pid-namespace level>
package main

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

//go:embed sensor.bpf.o
var program []byte

// Batching pause: the latency a batch may add, and the bound on wake-ups per second. 25 ms, not
// 10: at a paced 500 execs/s the agent's cost is mostly its wake-ups (10 ms: 161-170 µs of CPU per
// exec, 25 ms: 82-96 µs, on a quiet host), while detection stays far inside its p99 < 100 ms.
var batchPause = 25 * time.Millisecond

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "containment-sensor: %v\n", err)
		os.Exit(1)
	}
}

type probe struct {
	group, name, prog string
	optional          bool
}

// Every program of sensor.bpf.c and its tracepoint; optional ones are left out (and reported)
// where the kernel lacks the tracepoint, and named in the attach message.
var probes = []probe{
	{"syscalls", "sys_enter_execve", "enter_execve", false},
	{"syscalls", "sys_enter_execveat", "enter_execveat", false},
	{"sched", "sched_process_exec", "sched_exec", false},
	{"sched", "sched_process_exit", "sched_exit", false},
	{"syscalls", "sys_enter_connect", "enter_connect", false},
	{"syscalls", "sys_enter_bind", "enter_bind", false},
	{"syscalls", "sys_enter_accept", "enter_accept", false},
	{"syscalls", "sys_enter_accept4", "enter_accept4", false},
	{"syscalls", "sys_exit_accept", "exit_accept", false},
	{"syscalls", "sys_exit_accept4", "exit_accept4", false},
	{"sock", "inet_sock_set_state", "sock_state", false},
	{"syscalls", "sys_enter_openat", "enter_openat", false},
	{"syscalls", "sys_enter_open", "enter_open", true},
	{"syscalls", "sys_enter_setuid", "enter_setuid", false},
	{"syscalls", "sys_enter_setgid", "enter_setgid", false},
	{"syscalls", "sys_enter_setreuid", "enter_setreuid", false},
	{"syscalls", "sys_enter_setresuid", "enter_setresuid", false},
	{"syscalls", "sys_enter_ptrace", "enter_ptrace", false},
	{"syscalls", "sys_enter_finit_module", "enter_finit_module", true},
	{"syscalls", "sys_enter_init_module", "enter_init_module", true},
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: containment-sensor <host pid-namespace level>")
	}
	// One goroutine does the work: more Ps only add hand-offs between threads per wake-up.
	runtime.GOMAXPROCS(1)
	if ms, err := strconv.Atoi(os.Getenv("CONTAINMENT_SENSOR_BATCH_MS")); err == nil && ms >= 0 {
		batchPause = time.Duration(ms) * time.Millisecond
	}
	level, err := strconv.ParseUint(os.Args[1], 10, 32)
	if err != nil {
		return fmt.Errorf("bad pid-namespace level %q", os.Args[1])
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones ignore it.
	_ = rlimit.RemoveMemlock()

	spec, err := ebpf.LoadCollectionSpecFromReader(bytesReader(program))
	if err != nil {
		return fmt.Errorf("reading the BPF object: %w", err)
	}
	if err := spec.Variables["host_level"].Set(uint32(level)); err != nil {
		return fmt.Errorf("setting host_level: %w", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// One line saying what failed, then the verifier's whole log.
			return fmt.Errorf("loading the BPF program: %v\n%+v", ve, ve)
		}
		return fmt.Errorf("loading the BPF program: %w", err)
	}
	defer coll.Close()

	attached := 0
	var missing []byte
	for _, p := range probes {
		l, err := link.Tracepoint(p.group, p.name, coll.Programs[p.prog], nil)
		if err != nil {
			if p.optional && errors.Is(err, os.ErrNotExist) {
				if len(missing) > 0 {
					missing = append(missing, ',')
				}
				missing = appendJSONString(missing, []byte("tracepoint:"+p.group+":"+p.name))
				continue
			}
			return fmt.Errorf("attaching %s:%s: %w", p.group, p.name, err)
		}
		defer l.Close()
		attached++
	}

	rd, err := ringbuf.NewReader(coll.Maps["events"])
	if err != nil {
		return fmt.Errorf("opening the ring buffer: %w", err)
	}
	defer rd.Close()

	out := bufio.NewWriterSize(os.Stdout, 256<<10)
	fmt.Fprintf(out, "{\"type\":\"attached_probes\",\"data\":{\"probes\":%d,\"missing\":[%s]}}\n", attached, missing)
	if err := out.Flush(); err != nil {
		return err
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sigs
		rd.Close()
	}()

	lostMap := coll.Maps["lost"]
	var lostSeen uint64
	var lostChecked time.Time
	var rec ringbuf.Record
	var line []byte
	for {
		// Block until the kernel signals data (it does so when the ring goes from empty to not),
		// or a second passed: losses are reported even when nothing follows them.
		rd.SetDeadline(time.Now().Add(time.Second))
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			if n := sumLost(lostMap); n > lostSeen {
				fmt.Fprintf(out, "{\"type\":\"lost_events\",\"data\":{\"events\":%d}}\n", n-lostSeen)
				lostSeen = n
				if err := out.Flush(); err != nil {
					return err
				}
			}
			lostChecked = time.Now()
			continue
		}
		line = appendRecord(line[:0], rec.RawSample)
		out.Write(line)
		// Drain what else is there without waiting.
		rd.SetDeadline(time.Now())
		for {
			if err := rd.ReadInto(&rec); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
					out.Flush()
					return nil
				}
				return err
			}
			line = appendRecord(line[:0], rec.RawSample)
			out.Write(line)
		}
		// The lost counter is a system call to read: once a second at most.
		if now := time.Now(); now.Sub(lostChecked) >= time.Second {
			lostChecked = now
			if n := sumLost(lostMap); n > lostSeen {
				fmt.Fprintf(out, "{\"type\":\"lost_events\",\"data\":{\"events\":%d}}\n", n-lostSeen)
				lostSeen = n
			}
		}
		if err := out.Flush(); err != nil {
			return err // the agent is gone
		}
		time.Sleep(batchPause)
	}
}

func sumLost(m *ebpf.Map) uint64 {
	var perCPU []uint64
	if err := m.Lookup(uint32(0), &perCPU); err != nil {
		return 0
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n
}
