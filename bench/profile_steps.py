#!/usr/bin/env python3
"""Splits a `perf script` call-graph dump (stdin) into the steps of a request: each sample goes to
the first step whose pattern matches a frame, walking from the sampled function towards main, so
a malloc called by the metrics code counts as allocation and a sendmsg as the syscall it is.
Prints the share of samples of each step (bench/profile.sh, docs/performance.md)."""
import re
import sys

# (step, pattern on a frame's symbol); the first frame (leaf first) that matches any decides.
STEPS = [
    ("alloc", r"^(malloc|_int_malloc|_int_free|cfree@\S+|free|unlink_chunk\S*|malloc_consolidate|"
              r"operator new\b.*|operator delete\b.*|__libc_malloc|__libc_free|tcache\S*)$"),
    ("syscall:send", r"(__libc_sendmsg|__libc_send$|__send$|sendmsg|__libc_write$|writev)"),
    ("syscall:recv", r"(__libc_recvmsg|__libc_recv$|recvmsg|__libc_read$|readv)"),
    ("syscall:epoll", r"(epoll_wait|epoll_ctl)"),
    # Time reads (vDSO, no syscall): timers and durations.
    ("clock", r"(clock_gettime|steady_clock::now|system_clock::now|SteadyMillis)"),
    # Syscall entry/exit and the scheduler's switch carry no syscall name: the frame further down
    # (the libc wrapper) decides, so these match only what has none.
    ("syscall:other", r"^(timerfd|__GI___ioctl|__close|__libc_close|accept|__libc_accept)"),
    ("metrics", r"(millions::metrics::|prometheus::|HttpRequestMetrics|Proxy::Count)"),
    ("logging", r"(millions::log::|spdlog::)"),
    ("policy", r"(millions::lb::(Policy|RoundRobin|LeastOutstanding|P2c|Pool|BackendHealth|"
               r"RateLimiter|Pick)|Proxy::Pick)"),
    ("route", r"(Router::|router|Route::Match|MatchRoute)"),
    ("cache", r"(millions::cache::|L1Cache|L1::)"),
    ("forward headers", r"(UpstreamHead|forward::|XForwarded|RequestId|NewRequestId)"),
    ("parse", r"(beast::http::basic_parser|beast::http::parser|string_to_field|basic_fields|"
              r"detail::read_op|read_some_op|basic_parser|http::Parse|ParseRequest)"),
    ("serialize", r"(beast::http::serializer|detail::write_op|chunk|Serialize|WriteHead|"
                  r"basic_fields.*writer|http::Write)"),
    ("timers", r"(expires_after|expires_at|deadline_timer|steady_timer|timer_queue)"),
    ("asio runtime", r"(boost::asio::detail::(scheduler|epoll_reactor|reactive_socket|"
                     r"awaitable|socket_ops|handler_work|executor_op)|any_io_executor|"
                     r"coroutine|awaitable_frame|co_spawn)"),
    ("handler (ours)", r"millions::"),
]
COMPILED = [(name, re.compile(p)) for name, p in STEPS]


def main():
    counts, total, frames = {}, 0, []

    def close():
        nonlocal total, frames
        if not frames:
            return
        total += 1
        step = "other"
        for sym in frames:
            hit = next((n for n, c in COMPILED if c.search(sym)), None)
            if hit:
                step = hit
                break
        counts[step] = counts.get(step, 0) + 1
        frames = []

    for line in sys.stdin:
        if not line.strip():
            close()
            continue
        if line[0] not in " \t":
            close()
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].rsplit(" (", 1)[0])
            frames.append(sym)
    close()
    for step, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{step:18s} {100.0 * n / total:6.2f}%")
    print(f"{'samples':18s} {total}")


main()
