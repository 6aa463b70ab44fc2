// SPDX-License-Identifier: GPL-2.0
/*
 * Containment runtime sensor, kernel side (the native engine; probes.bt is the bpftrace
 * original whose semantics this keeps). Only tasks in a deeper pid namespace than the host's
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

#define KIND_EXEC 1

#define F_ARGV_MORE 1
#define F_UPPER 2
#define F_DELETED 4
#define F_EXE_REVERSED 8

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

struct sys_enter_args {
	u64 common;
	long syscall_nr;
	unsigned long args[6];
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
 */
static __always_inline u32 exe_path(struct file *exe, char *buf)
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
		r->exe_len = exe_path(exe, r->exe);
		r->flags |= F_EXE_REVERSED;
	}
	bpf_ringbuf_submit(r, 0);
	return 0;
}
