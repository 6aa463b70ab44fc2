// SPDX-License-Identifier: GPL-2.0
/*
 * Containment runtime sensor, kernel side (the native engine; it keeps the semantics of the
 * bpftrace program it replaced, src/runtime/sensor/probes.bt before issue 11). Only tasks in a deeper pid namespace than the host's
 * (containers) pass. Each event leaves the kernel as ONE ring-buffer record: an exec joins the
 * argv read at execve entry (kept per thread in an LRU map; a failed execve never sends the
 * exec) with the new image's facts, including what user space used to read from /proc: the
 * executable's path as the container sees it, whether it was deleted, and whether it lives on
 * the overlay upper layer (written or changed after the container started).
 * vmlinux.h is generated at build time from /sys/kernel/btf/vmlinux (CO-RE).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define STRLEN 160
#define ARGV_SLOTS 6
#define EXE_LEN 256
#define EXE_DEPTH 24
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define S_IFMT 00170000
#define S_IFREG 0100000

enum kind {
	KIND_EXEC = 1,
	KIND_EXIT,
	KIND_CONNECT,
	KIND_ACCEPT,
	KIND_BIND,
	KIND_LISTEN,
	KIND_OPEN,
	KIND_SETID,
	KIND_PTRACE,
	KIND_MODULE,
};

/* setid and module records name their syscall by these codes (record.go's syscallNames). */
enum syscall_code {
	SC_SETUID = 1,
	SC_SETGID,
	SC_SETREUID,
	SC_SETRESUID,
	SC_FINIT_MODULE,
	SC_INIT_MODULE,
};

#define F_ARGV_MORE 1
#define F_UPPER 2
#define F_DELETED 4
#define F_EXE_WHOLE 8
/* The walk did not reach the root (too deep or too long): user space reads /proc instead. */
#define F_EXE_PARTIAL 16

/* Set by the loader: the host's pid-namespace level. */
const volatile u32 host_level = 0;

struct argv_buf {
	u32 argc;
	u32 more;
	char args[ARGV_SLOTS][STRLEN];
};

struct exec_rec {
	u32 kind;
	u32 pid;
	u32 old_pid;
	u32 ppid;
	u32 uid;
	u32 euid;
	u64 cgroup;
	u64 ns;
	u32 mode0;
	u32 mode1;
	u32 argc;
	u32 flags;
	u32 exe_len;
	u32 pad;
	char comm[16];
	char filename[STRLEN];
	char args[ARGV_SLOTS][STRLEN];
	/* Path components leaf first, each followed by '/': user space reverses them. */
	char exe[EXE_LEN * 2];
};

/* What every record other than an exec starts with. */
struct hdr {
	u32 kind;
	u32 pid;
	u32 uid;
	u32 pad;
	u64 cgroup;
	char comm[16];
};

/* connect, accept, bind, listen: the remote (connect, accept) or local (bind, listen) end. */
struct net_rec {
	struct hdr h;
	u16 family;
	u16 port; /* host order */
	u32 pad;
	u8 addr[16];
};

struct open_rec {
	struct hdr h;
	u32 flags;
	u32 pad;
	char file[STRLEN];
};

/* setid (a = syscall code), ptrace (a = target pid, b = request), module (a = syscall code). */
struct misc_rec {
	struct hdr h;
	u32 a;
	u32 b;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, struct argv_buf);
} argvs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct argv_buf);
} scratch SEC(".maps");

/* Records the ring buffer had no room for, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

/* Accepts in flight: the caller's sockaddr pointer, per thread. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, u64);
} peer SEC(".maps");

struct sys_enter_args {
	u64 common;
	long syscall_nr;
	unsigned long args[6];
};

struct sys_exit_args {
	u64 common;
	long syscall_nr;
	long ret;
};

static __always_inline bool in_container(struct task_struct *t)
{
	return BPF_CORE_READ(t, thread_pid, level) > host_level;
}

static __always_inline void count_lost(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		*n += 1;
}

static __always_inline int save_argv(const char *const *argv)
{
	struct task_struct *t = bpf_get_current_task_btf();
	if (!in_container(t))
		return 0;
	u32 zero = 0;
	struct argv_buf *b = bpf_map_lookup_elem(&scratch, &zero);
	if (!b)
		return 0;
	b->argc = 0;
	b->more = argv != 0;
	for (int i = 0; i < ARGV_SLOTS; i++) {
		const char *p = 0;
		if (!b->more)
			break;
		if (bpf_probe_read_user(&p, sizeof(p), &argv[i]) < 0 || p == 0) {
			b->more = 0;
			break;
		}
		if (bpf_probe_read_user_str(b->args[i], STRLEN, p) < 0)
			b->args[i][0] = 0;
		b->argc = i + 1;
	}
	/* Past the last slot: is there another argument? */
	if (b->more) {
		const char *p = 0;
		bpf_probe_read_user(&p, sizeof(p), &argv[ARGV_SLOTS]);
		b->more = p != 0;
	}
	u32 tid = (u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&argvs, &tid, b, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct sys_enter_args *ctx)
{
	return save_argv((const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct sys_enter_args *ctx)
{
	return save_argv((const char *const *)ctx->args[2]);
}

static __always_inline u32 fd_mode(struct file **fds, int i)
{
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[i]);
	if (!f)
		return 0;
	return BPF_CORE_READ(f, f_inode, i_mode);
}

/*
 * The executable's path as d_path would give it from the root of the mount tree: dentries up to
 * their mount's root, then across to the mount point in the parent mount, components leaf first.
 * `whole` is false when the walk stopped short (more than EXE_DEPTH steps, or EXE_LEN bytes).
 */
static __always_inline u32 exe_path(struct file *exe, char *buf, bool *whole)
{
	struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
	struct vfsmount *vm = BPF_CORE_READ(exe, f_path.mnt);
	struct mount *m = container_of(vm, struct mount, mnt);
	u32 off = 0;
	for (int i = 0; i < EXE_DEPTH; i++) {
		struct dentry *root = BPF_CORE_READ(m, mnt.mnt_root);
		if (d == root) {
			struct mount *parent = BPF_CORE_READ(m, mnt_parent);
			if (parent == m)
				break;
			d = BPF_CORE_READ(m, mnt_mountpoint);
			m = parent;
			continue;
		}
		struct dentry *up = BPF_CORE_READ(d, d_parent);
		if (up == d)
			break;
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		if (off >= EXE_LEN)
			break;
		long n = bpf_probe_read_kernel_str(buf + off, EXE_LEN, name);
		if (n <= 0)
			break;
		off += n; /* n counts the NUL, which becomes the separator */
		buf[(off - 1) & (EXE_LEN * 2 - 1)] = '/';
		d = up;
	}
	/* Decided once after the loop (a flag set inside it multiplies the verifier's states). */
	*whole = d == BPF_CORE_READ(m, mnt.mnt_root) ? BPF_CORE_READ(m, mnt_parent) == m
						       : BPF_CORE_READ(d, d_parent) == d;
	return off;
}

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	if (!in_container(t))
		return 0;
	struct exec_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost();
		return 0;
	}
	u64 ug = bpf_get_current_uid_gid();
	r->kind = KIND_EXEC;
	r->pid = ctx->pid;
	r->old_pid = ctx->old_pid;
	r->ppid = BPF_CORE_READ(t, real_parent, tgid);
	r->uid = (u32)ug;
	r->euid = BPF_CORE_READ(t, cred, euid.val);
	r->cgroup = bpf_get_current_cgroup_id();
	r->ns = bpf_ktime_get_ns();
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	unsigned int loc = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(r->filename, STRLEN, (void *)ctx + loc);

	struct file **fds = BPF_CORE_READ(t, files, fdt, fd);
	r->mode0 = fd_mode(fds, 0);
	r->mode1 = fd_mode(fds, 1);

	r->flags = 0;
	r->argc = 0;
	u32 old = ctx->old_pid;
	struct argv_buf *b = bpf_map_lookup_elem(&argvs, &old);
	if (b) {
		r->argc = b->argc;
		if (b->more)
			r->flags |= F_ARGV_MORE;
		bpf_probe_read_kernel(r->args, sizeof(r->args), b->args);
		bpf_map_delete_elem(&argvs, &old);
	}

	struct file *exe = BPF_CORE_READ(t, mm, exe_file);
	r->exe_len = 0;
	if (exe) {
		struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
		struct inode *ino = BPF_CORE_READ(exe, f_path.dentry, d_inode);
		/* d_unlinked: unhashed and not a root (readlink's " (deleted)"). */
		if (BPF_CORE_READ(d, d_hash.pprev) == 0 && BPF_CORE_READ(d, d_parent) != d)
			r->flags |= F_DELETED;
		if (BPF_CORE_READ(ino, i_sb, s_magic) == OVERLAYFS_SUPER_MAGIC &&
		    (BPF_CORE_READ(ino, i_mode) & S_IFMT) == S_IFREG) {
			struct ovl_inode *oi = container_of(ino, struct ovl_inode, vfs_inode);
			if (BPF_CORE_READ(oi, __upperdentry) != 0)
				r->flags |= F_UPPER;
		}
		bool whole = false;
		r->exe_len = exe_path(exe, r->exe, &whole);
		r->flags |= whole ? F_EXE_WHOLE : F_EXE_PARTIAL;
	}
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* Reserves a record of `size` bytes and fills its header; NULL (counted as lost) when full. */
static __always_inline void *reserve(u32 size, u32 kind)
{
	struct hdr *h = bpf_ringbuf_reserve(&events, size, 0);
	if (!h) {
		count_lost();
		return 0;
	}
	h->kind = kind;
	h->pid = bpf_get_current_pid_tgid() >> 32;
	h->uid = (u32)bpf_get_current_uid_gid();
	h->pad = 0;
	h->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	return h;
}

SEC("tracepoint/sched/sched_process_exit")
int sched_exit(void *ctx)
{
	u64 pt = bpf_get_current_pid_tgid();
	if ((u32)pt != pt >> 32 || !in_container(bpf_get_current_task_btf()))
		return 0;
	struct hdr *h = reserve(sizeof(*h), KIND_EXIT);
	if (h)
		bpf_ringbuf_submit(h, 0);
	return 0;
}

/*
 * A sockaddr from user memory as (family, port, address); false for anything but IPv4/IPv6.
 * Ports come in network order: stored in host order, as the decoder expects.
 */
static __always_inline bool read_sockaddr(const void *sa, u16 *family, u16 *port, u8 *addr)
{
	u16 fam = 0;
	if (!sa || bpf_probe_read_user(&fam, sizeof(fam), sa) < 0)
		return false;
	u16 p = 0;
	if (fam == 2) {
		bpf_probe_read_user(&p, sizeof(p), sa + 2);
		bpf_probe_read_user(addr, 4, sa + 4);
	} else if (fam == 10) {
		bpf_probe_read_user(&p, sizeof(p), sa + 2);
		bpf_probe_read_user(addr, 16, sa + 8);
	} else {
		return false;
	}
	*family = fam;
	*port = __builtin_bswap16(p);
	return true;
}

static __always_inline int net_event(u32 kind, const void *sa, bool skip_port0)
{
	u16 family = 0, port = 0;
	u8 addr[16] = {};
	if (!read_sockaddr(sa, &family, &port, addr))
		return 0;
	if (skip_port0 && port == 0)
		return 0;
	struct net_rec *r = reserve(sizeof(*r), kind);
	if (!r)
		return 0;
	r->family = family;
	r->port = port;
	r->pad = 0;
	__builtin_memcpy(r->addr, addr, sizeof(addr));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* Connects as asked (failed ones too: a miner pool that refuses is still a miner). */
SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct sys_enter_args *ctx)
{
	if (!in_container(bpf_get_current_task_btf()))
		return 0;
	return net_event(KIND_CONNECT, (const void *)ctx->args[1], false);
}

/* UDP has no listen: a bind to a fixed port is its listener. */
SEC("tracepoint/syscalls/sys_enter_bind")
int enter_bind(struct sys_enter_args *ctx)
{
	if (!in_container(bpf_get_current_task_btf()))
		return 0;
	return net_event(KIND_BIND, (const void *)ctx->args[1], true);
}

static __always_inline int accept_enter(struct sys_enter_args *ctx)
{
	if (!in_container(bpf_get_current_task_btf()))
		return 0;
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 sa = ctx->args[1];
	bpf_map_update_elem(&peer, &tid, &sa, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int enter_accept(struct sys_enter_args *ctx) { return accept_enter(ctx); }

SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct sys_enter_args *ctx) { return accept_enter(ctx); }

/* Accepts when they return: the peer from the caller's sockaddr, or none when it passed NULL. */
static __always_inline int accept_exit(struct sys_exit_args *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *p = bpf_map_lookup_elem(&peer, &tid);
	u64 sa = p ? *p : 0;
	if (p)
		bpf_map_delete_elem(&peer, &tid);
	if (ctx->ret < 0 || !in_container(bpf_get_current_task_btf()))
		return 0;
	if (sa != 0)
		return net_event(KIND_ACCEPT, (const void *)sa, false);
	struct net_rec *r = reserve(sizeof(*r), KIND_ACCEPT);
	if (!r)
		return 0;
	r->family = 0;
	r->port = 0;
	r->pad = 0;
	__builtin_memset(r->addr, 0, sizeof(r->addr));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct sys_exit_args *ctx) { return accept_exit(ctx); }

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct sys_exit_args *ctx) { return accept_exit(ctx); }

/* Listeners from the TCP state change to LISTEN. */
SEC("tracepoint/sock/inet_sock_set_state")
int sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->newstate != 10 || !in_container(bpf_get_current_task_btf()))
		return 0;
	struct net_rec *r = reserve(sizeof(*r), KIND_LISTEN);
	if (!r)
		return 0;
	r->port = ctx->sport;
	r->pad = 0;
	/* The context is read through the helper: the verifier refuses offset loads from it. */
	if (ctx->family == 2) {
		r->family = 2;
		__builtin_memset(r->addr, 0, sizeof(r->addr));
		bpf_probe_read_kernel(r->addr, 4, ctx->saddr);
	} else {
		r->family = 10;
		bpf_probe_read_kernel(r->addr, 16, ctx->saddr_v6);
	}
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* Opens: only absolute paths under the sensitive prefixes leave the kernel. */
#define PREFIX_LEN 18
static __always_inline bool has_prefix(const char *s, const char *prefix, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != prefix[i])
			return false;
	return true;
}

static __always_inline bool sensitive(const char *p)
{
	return has_prefix(p, "/etc/shadow", 11) || has_prefix(p, "/etc/gshadow", 12) ||
	       has_prefix(p, "/etc/sudoers", 12) || has_prefix(p, "/root/", 6) ||
	       has_prefix(p, "/home/", 6) || has_prefix(p, "/var/run/secrets/", 17) ||
	       has_prefix(p, "/run/secrets/", 13) || has_prefix(p, "/etc/ssh/", 9) ||
	       has_prefix(p, "/etc/kubernetes/", 16);
}

static __always_inline int open_event(const char *file, u32 flags)
{
	if (!in_container(bpf_get_current_task_btf()))
		return 0;
	char head[PREFIX_LEN] = {};
	if (bpf_probe_read_user_str(head, sizeof(head), file) <= 0 || head[0] != '/')
		return 0;
	if (!sensitive(head))
		return 0;
	struct open_rec *r = reserve(sizeof(*r), KIND_OPEN);
	if (!r)
		return 0;
	r->flags = flags;
	r->pad = 0;
	if (bpf_probe_read_user_str(r->file, STRLEN, file) < 0)
		r->file[0] = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct sys_enter_args *ctx)
{
	return open_event((const char *)ctx->args[1], (u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct sys_enter_args *ctx)
{
	return open_event((const char *)ctx->args[0], (u32)ctx->args[1]);
}

static __always_inline int misc_event(u32 kind, u32 a, u32 b)
{
	struct misc_rec *r = reserve(sizeof(*r), kind);
	if (!r)
		return 0;
	r->a = a;
	r->b = b;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* A non-root task asking for uid or gid 0. */
static __always_inline bool nonroot_in_container(void)
{
	return (u32)bpf_get_current_uid_gid() != 0 && in_container(bpf_get_current_task_btf());
}

SEC("tracepoint/syscalls/sys_enter_setuid")
int enter_setuid(struct sys_enter_args *ctx)
{
	if ((u32)ctx->args[0] != 0 || !nonroot_in_container())
		return 0;
	return misc_event(KIND_SETID, SC_SETUID, 0);
}

SEC("tracepoint/syscalls/sys_enter_setgid")
int enter_setgid(struct sys_enter_args *ctx)
{
	if ((u32)ctx->args[0] != 0 || !nonroot_in_container())
		return 0;
	return misc_event(KIND_SETID, SC_SETGID, 0);
}

SEC("tracepoint/syscalls/sys_enter_setreuid")
int enter_setreuid(struct sys_enter_args *ctx)
{
	if (((u32)ctx->args[0] != 0 && (u32)ctx->args[1] != 0) || !nonroot_in_container())
		return 0;
	return misc_event(KIND_SETID, SC_SETREUID, 0);
}

SEC("tracepoint/syscalls/sys_enter_setresuid")
int enter_setresuid(struct sys_enter_args *ctx)
{
	if (((u32)ctx->args[0] != 0 && (u32)ctx->args[1] != 0) || !nonroot_in_container())
		return 0;
	return misc_event(KIND_SETID, SC_SETRESUID, 0);
}

/* PTRACE_ATTACH (16) and PTRACE_SEIZE (0x4206). */
SEC("tracepoint/syscalls/sys_enter_ptrace")
int enter_ptrace(struct sys_enter_args *ctx)
{
	long req = ctx->args[0];
	if ((req != 16 && req != 0x4206) || !in_container(bpf_get_current_task_btf()))
		return 0;
	return misc_event(KIND_PTRACE, (u32)ctx->args[1], (u32)req);
}

/* Module loading: kernels built without modules lack these tracepoints (left out, reported). */
SEC("tracepoint/syscalls/sys_enter_finit_module")
int enter_finit_module(void *ctx)
{
	if (!in_container(bpf_get_current_task_btf()))
		return 0;
	return misc_event(KIND_MODULE, SC_FINIT_MODULE, 0);
}

SEC("tracepoint/syscalls/sys_enter_init_module")
int enter_init_module(void *ctx)
{
	if (!in_container(bpf_get_current_task_btf()))
		return 0;
	return misc_event(KIND_MODULE, SC_INIT_MODULE, 0);
}
