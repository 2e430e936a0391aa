/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cm-cleanup.h"
#include "cm-notify.h"
#include "cm-util.h"

int cm_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_close_ int fd = -1;
    size_t len;
    socklen_t salen;

    if (!path || !*path)
        return 0;
    len = strlen(path);
    if (len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
        return -errno;
    return 1;
}

uint64_t cm_notify_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    int64_t v, p;

    if (!usec || cm_parse_int64(usec, 1, INT64_MAX, &v) < 0)
        return 0;
    if (pid && (cm_parse_int64(pid, 1, INT32_MAX, &p) < 0 || p != (int64_t)getpid()))
        return 0;
    return (uint64_t)v;
}
