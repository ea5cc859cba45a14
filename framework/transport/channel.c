/* SPDX-License-Identifier: MIT */
/*
 * channel.c - dispatches the channel interface (channel.h) to the
 * transport a channel was made with: pipe (channel_pipe.c) or shared-memory
 * ring (channel_ring.c, ring_wait.c).  A pipeline uses one transport for all
 * channels.
 */
#include <errno.h>
#include <poll.h>
#include <time.h>

#include "transport/channel.h"

void cv_channel_keep(cv_channel *ch, int ends)
{
    ch->ops->keep(ch, ends);
}

int cv_channel_send_ref(cv_channel *ch, uint64_t seq, cv_ref ref, uint32_t off, uint32_t len)
{
    return ch->ops->send_ref ? ch->ops->send_ref(ch, seq, ref, off, len) : -ENOTSUP;
}

void *cv_channel_reserve(cv_channel *ch, size_t max_len)
{
    return ch->ops->reserve(ch, max_len);
}

int cv_channel_commit(cv_channel *ch, uint64_t seq, size_t len)
{
    return ch->ops->commit(ch, seq, len);
}

int cv_channel_flush(cv_channel *ch, int wait)
{
    return ch->ops->flush(ch, wait);
}

int cv_channel_pending(const cv_channel *ch)
{
    return ch->ops->pending(ch);
}

void cv_channel_publish(cv_channel *ch)
{
    ch->ops->publish(ch);
}

void cv_channel_publish_each(cv_channel *ch)
{
    if (ch->ops->publish_each)
        ch->ops->publish_each(ch);
    else
        ch->ops->publish(ch);
}

int cv_channel_close_write(cv_channel *ch)
{
    return ch->ops->close_write(ch);
}

void cv_channel_close_read(cv_channel *ch)
{
    ch->ops->close_read(ch);
}

int cv_channels_wait(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                     int extra_fd, int timeout_ms, const sigset_t *sigmask)
{
    const struct cv_channel_ops *ops = nread ? read[0]->ops : nwrite ? write[0]->ops : NULL;
    if (!ops) {
        /* No channel: only the extra descriptor to wait for. */
        if (extra_fd < 0)
            return -EINVAL;
        struct pollfd pfd = {.fd = extra_fd, .events = POLLIN};
        struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
        if (ppoll(&pfd, 1, timeout_ms >= 0 ? &ts : NULL, sigmask) < 0)
            return -errno;
        return 0;
    }
    return ops->wait(read, nread, write, nwrite, extra_fd, timeout_ms, sigmask);
}

static int poll_one(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, timeout_ms) < 0 ? -errno : 0;
}

int cv_channels_wait_fd(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                        int fd, int timeout_ms)
{
    const struct cv_channel_ops *ops = nread ? read[0]->ops : nwrite ? write[0]->ops : NULL;
    if (!ops)
        return poll_one(fd, timeout_ms);
    if (!ops->arm)
        return ops->wait(read, nread, write, nwrite, fd, timeout_ms, NULL);
    int rc = 0;
    if (ops->arm(read, nread, write, nwrite) == 0)
        rc = poll_one(fd, timeout_ms);
    ops->disarm(read, nread, write, nwrite);
    return rc;
}

int cv_channels_arm(cv_channel **read, size_t nread)
{
    if (!nread || !read[0]->ops->arm)
        return 0;
    return read[0]->ops->arm(read, nread, NULL, 0);
}

void cv_channels_disarm(cv_channel **read, size_t nread)
{
    if (nread && read[0]->ops->disarm)
        read[0]->ops->disarm(read, nread, NULL, 0);
}

int cv_channel_midway(const cv_channel *ch)
{
    return ch->ops->midway ? ch->ops->midway(ch) : 0;
}

int cv_channel_write_fd(const cv_channel *ch)
{
    return ch->ops->write_fd ? ch->ops->write_fd(ch) : -1;
}

int cv_channel_read_fd(const cv_channel *ch)
{
    return ch->ops->read_fd ? ch->ops->read_fd(ch) : -1;
}

uint64_t cv_channel_queued(const cv_channel *ch)
{
    return ch->ops->queued(ch);
}

int cv_channel_fill(const cv_channel *ch, uint64_t *bytes, uint64_t *capacity)
{
    return ch->ops->fill ? ch->ops->fill(ch, bytes, capacity) : -ENOTSUP;
}

void cv_channel_destroy(cv_channel *ch)
{
    if (ch)
        ch->ops->destroy(ch);
}

int cv_channel_set_ack(cv_channel *ch, int ends)
{
    if (!ch->ops->set_ack)
        return -ENOTSUP;
    ch->ops->set_ack(ch, ends);
    return 0;
}

void cv_channel_ack(cv_channel *ch)
{
    if (ch->ops->ack)
        ch->ops->ack(ch);
}

int cv_channel_resume(cv_channel *ch)
{
    if (!ch->ops->resume)
        return -ENOTSUP;
    ch->ops->resume(ch);
    return 0;
}

void cv_channel_publish_partial(cv_channel *ch)
{
    if (ch->ops->publish_partial)
        ch->ops->publish_partial(ch);
    else
        ch->ops->publish(ch);
}
