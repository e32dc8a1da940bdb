/* Making descriptors 0-2 safe at start: a closed one would be handed to the next open(),
 * and LMDB's lock file on fd 1 or 2 gets every printf and log line written over it. */
#include "fds.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "error.h"

int th_fds_guard(unsigned *closed)
{
	unsigned was = 0;
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* the lowest free number is fd itself: the ones below it are open by now */
		int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (got < 0)
			return TH_ESYS;
		if (got != fd) { /* cannot happen, but a wrong guess must not leak it */
			int rc = dup2(got, fd);
			close(got);
			if (rc < 0)
				return TH_ESYS;
		}
		was |= 1u << fd;
	}
	if (closed)
		*closed = was;
	return 0;
}

int th_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return TH_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
