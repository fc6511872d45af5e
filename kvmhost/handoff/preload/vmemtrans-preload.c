/*
 * vmemtrans-preload: hands an unmodified VMM's guest RAM to the VMemTrans
 * split-memory runtime.
 *
 * Loaded with LD_PRELOAD into the VMM (QEMU with a memory-backend-memfd), it
 * watches mmap. The first MAP_SHARED mapping of a memfd at least
 * VMEMTRANS_HANDOFF_MIN_MB MiB long (default 64; its name must contain
 * VMEMTRANS_HANDOFF_NAME when set) is the guest RAM: before mmap returns, a
 * userfaultfd is created in this process (userfaultfd works per address
 * space), the mapping is registered with it for missing and write-protect
 * faults, and the userfaultfd and the memfd travel with the mapping's
 * address, length and file offset over the unix socket
 * VMEMTRANS_HANDOFF_SOCKET (SCM_RIGHTS). mmap returns only after the
 * runtime's ack, so no guest access precedes the registration being served.
 *
 * The message (native byte order, 32 bytes): "VMTH", u32 version (1),
 * u64 address, u64 length, u64 file offset; descriptors: userfaultfd, memfd.
 * The ack is one byte: 0 accepted, anything else refused.
 *
 * Any failure on the way is fatal: a VMM left with a registered range and
 * nobody serving it would hang on its first access, and one left without
 * the registration would run unsplit, unseen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define HANDOFF_VERSION 1

struct handoff_msg {
	char magic[4];
	uint32_t version;
	uint64_t addr;
	uint64_t length;
	uint64_t offset;
};

static int handed; /* the guest RAM went to the runtime already */

static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("vmemtrans-preload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(70);
}

static int is_guest_ram(int fd, size_t length, int flags)
{
	char link[64], target[256];
	const char *min_env = getenv("VMEMTRANS_HANDOFF_MIN_MB");
	const char *name = getenv("VMEMTRANS_HANDOFF_NAME");
	unsigned long min_mb = min_env ? strtoul(min_env, NULL, 10) : 64;
	ssize_t n;

	if (handed || fd < 0 || (flags & MAP_TYPE) != MAP_SHARED || length < (size_t)min_mb << 20)
		return 0;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof target - 1);
	if (n <= 0)
		return 0;
	target[n] = 0;
	if (strncmp(target, "/memfd:", 7) != 0)
		return 0;
	return name == NULL || strstr(target, name) != NULL;
}

static int make_uffd(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	};
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			uffd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	if (uffd < 0)
		die("userfaultfd: %s (allow it with sysctl vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)", strerror(errno));
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		die("userfaultfd api (missing shmem + write-protect shmem): %s", strerror(errno));
	return uffd;
}

static void hand_off(void *addr, size_t length, int memfd, off_t offset)
{
	const char *path = getenv("VMEMTRANS_HANDOFF_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t)addr, .len = length},
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};
	struct handoff_msg msg = {.magic = "VMTH", .version = HANDOFF_VERSION,
				  .addr = (uintptr_t)addr, .length = length, .offset = (uint64_t)offset};
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = {.iov_base = &msg, .iov_len = sizeof msg};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *cm;
	int uffd, sock, fds[2];
	unsigned char ack;
	ssize_t n;

	if (path == NULL || *path == 0)
		die("guest ram mapped but VMEMTRANS_HANDOFF_SOCKET is not set");
	if (strlen(path) >= sizeof sa.sun_path)
		die("handoff socket path %s too long", path);
	strcpy(sa.sun_path, path);

	uffd = make_uffd();
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		die("register guest ram %p+%#zx (missing + write-protect): %s", addr, length, strerror(errno));

	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect to the runtime at %s: %s", path, strerror(errno));
	memset(cbuf, 0, sizeof cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	fds[0] = uffd;
	fds[1] = memfd;
	memcpy(CMSG_DATA(cm), fds, sizeof fds);
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof msg)
		die("send guest ram to the runtime at %s: %s", path, n < 0 ? strerror(errno) : "short write");
	do
		n = read(sock, &ack, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		die("runtime at %s closed without an ack", path);
	if (ack != 0)
		die("runtime at %s refused the guest ram (code %u)", path, ack);
	/* The runtime holds the userfaultfd now; this process needs no copy. */
	close(uffd);
	close(sock);
	handed = 1;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	long r = syscall(SYS_mmap, addr, length, prot, flags, fd, offset);

	if (r == -1)
		return MAP_FAILED; /* syscall() set errno */
	if (is_guest_ram(fd, length, flags)) {
		int saved = errno;
		hand_off((void *)r, length, fd, offset);
		errno = saved;
	}
	return (void *)r;
}

void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
	__attribute__((alias("mmap")));
