/*
 * cattle-cni native addon: the only C in the suite.
 *
 * Node can do file I/O on any descriptor, but it cannot create a netlink
 * socket, switch network namespaces, take an flock, connect a unix socket
 * synchronously, ask one who is on the other end, or start a process without
 * fork's cost (posix_spawn). These few calls are all
 * the addon offers; everything else (message encoding, namespaces, locking
 * policy) lives in TypeScript.
 *
 * Errors are thrown as JS Errors carrying `code` (e.g. "EPERM") and `errno`.
 */
#define _GNU_SOURCE
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

static const char *errno_code(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOLCK: return "ENOLCK";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOTDIR: return "ENOTDIR";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  napi_value code, message, error, errnum;
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return NULL;
}

static int int_args(napi_env env, napi_callback_info info, size_t want, int32_t *out) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "missing integer argument");
    return -1;
  }
  for (size_t i = 0; i < want; i++) {
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "arguments must be integers");
      return -1;
    }
  }
  return 0;
}

static napi_value int_result(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/* netlinkSocket(nsFd, protocol, groups, recvTimeoutMs) -> fd
 * nsFd < 0: current netns. Otherwise the socket is created inside nsFd's
 * netns and the calling thread is switched back before returning, so no JS
 * runs while switched. A netlink socket stays in its netns for its lifetime. */
static napi_value netlink_socket(napi_env env, napi_callback_info info) {
  int32_t a[4];
  if (int_args(env, info, 4, a) < 0) return NULL;
  int ns_fd = a[0], protocol = a[1], groups = a[2], timeout_ms = a[3];
  int saved = -1, fd, err;

  if (ns_fd >= 0) {
    saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved < 0) return throw_errno(env, "open /proc/thread-self/ns/net", errno);
    if (setns(ns_fd, CLONE_NEWNET) < 0) {
      err = errno;
      close(saved);
      return throw_errno(env, "setns", err);
    }
  }
  fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  err = errno;
  if (saved >= 0) {
    if (setns(saved, CLONE_NEWNET) < 0) {
      /* Cannot return to the original netns: continuing would act on the
       * wrong namespace, so fail loudly. */
      int e2 = errno;
      close(saved);
      if (fd >= 0) close(fd);
      return throw_errno(env, "setns back to original netns", e2);
    }
    close(saved);
  }
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", err);

  int one = 1;
  /* Extended acks carry the kernel's error text; strict checking makes the
   * kernel honour dump filters. Both are best effort on old kernels. */
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);
  int rcvbuf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (timeout_ms > 0) {
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = (unsigned)groups;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    err = errno;
    close(fd);
    return throw_errno(env, "bind(AF_NETLINK)", err);
  }
  return int_result(env, fd);
}

/* setns(fd, nstype): switch the calling (main) thread only. */
static napi_value do_setns(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (int_args(env, info, 2, a) < 0) return NULL;
  if (setns(a[0], a[1]) < 0) return throw_errno(env, "setns", errno);
  return int_result(env, 0);
}

/* flock(fd, operation) -> 0, or throws (EWOULDBLOCK with LOCK_NB). */
static napi_value do_flock(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (int_args(env, info, 2, a) < 0) return NULL;
  int r;
  do { r = flock(a[0], a[1]); } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "flock", errno);
  return int_result(env, 0);
}

/* peerCredentials(fd) -> [pid, uid, gid] of a connected unix socket's peer
 * (SO_PEERCRED: what the peer was when it connected; the kernel fills it in,
 * the peer cannot forge it). */
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  int32_t a[1];
  if (int_args(env, info, 1, a) < 0) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(a[0], SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  napi_value out;
  napi_create_array_with_length(env, 3, &out);
  napi_set_element(env, out, 0, int_result(env, (int32_t)cred.pid));
  napi_set_element(env, out, 1, int_result(env, (int32_t)cred.uid));
  napi_set_element(env, out, 2, int_result(env, (int32_t)cred.gid));
  return out;
}

/* unixConnect(path, timeoutMs) -> fd of a blocking unix stream socket
 * connected to path, whose reads and writes give up with EAGAIN after
 * timeoutMs. Synchronous on purpose: the fast path's client does one
 * exchange and needs no event loop (and no node:net to load). */
static napi_value unix_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  struct sockaddr_un sa;
  size_t len = 0;
  int32_t timeout_ms = 0;
  memset(&sa, 0, sizeof sa);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], sa.sun_path, sizeof sa.sun_path, &len) != napi_ok ||
      napi_get_value_int32(env, argv[1], &timeout_ms) != napi_ok) {
    napi_throw_type_error(env, NULL, "unixConnect(path, timeoutMs)");
    return NULL;
  }
  if (len == 0 || len >= sizeof sa.sun_path - 1) return throw_errno(env, "unix socket path", ENAMETOOLONG);
  sa.sun_family = AF_UNIX;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_UNIX)", errno);
  if (timeout_ms > 0) {
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  int r;
  do { r = connect(fd, (struct sockaddr *)&sa, sizeof sa); } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "connect", err);
  }
  return int_result(env, fd);
}

/* Copies a JS array of strings into a NULL-terminated C array (malloc'ed). */
static char **string_array(napi_env env, napi_value arr) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof(char *));
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    size_t len = 0;
    napi_get_element(env, arr, i, &v);
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) { out[i] = NULL; break; }
    out[i] = malloc(len + 1);
    if (out[i]) napi_get_value_string_utf8(env, v, out[i], len + 1, &len);
  }
  return out;
}

static void free_array(char **a) {
  if (!a) return;
  for (char **p = a; *p; p++) free(*p);
  free(a);
}

/* spawnPiped(file, argv[], envp[], inheritFds[]) -> [pid, stdinFd, stdoutFd]
 * posix_spawn: the child is made without copying this process's page tables
 * (fork cost grows with RSS: ~5 ms for a long-running agent). stdin and stdout
 * are pipes (our ends close-on-exec), stderr is inherited, inheritFds[i]
 * becomes fd 3+i in the child, signals are reset to their defaults. */
static napi_value spawn_piped(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "spawnPiped(file, argv, envp, inheritFds)");
    return NULL;
  }
  char file[4096];
  size_t flen = 0;
  if (napi_get_value_string_utf8(env, argv[0], file, sizeof file, &flen) != napi_ok || flen == 0 || flen >= sizeof file - 1) {
    napi_throw_type_error(env, NULL, "spawnPiped: bad file");
    return NULL;
  }
  uint32_t nfds = 0;
  napi_get_array_length(env, argv[3], &nfds);
  if (nfds > 16) nfds = 16;
  int inherit[16], temp[16];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    napi_get_element(env, argv[3], i, &v);
    napi_get_value_int32(env, v, &inherit[i]);
    temp[i] = -1;
  }
  char **cargv = string_array(env, argv[1]);
  char **cenvp = string_array(env, argv[2]);
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err = 0;
  pid_t pid = -1;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  if (!cargv || !cenvp) { err = ENOMEM; goto done; }
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) { err = errno; goto done; }
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  for (uint32_t i = 0; i < nfds; i++) {
    /* dup2 onto itself would keep close-on-exec: go through a copy. */
    int src = inherit[i];
    if (src == (int)(3 + i) || src < (int)(3 + nfds)) {
      temp[i] = fcntl(src, F_DUPFD_CLOEXEC, 64);
      if (temp[i] >= 0) src = temp[i];
    }
    posix_spawn_file_actions_adddup2(&fa, src, (int)(3 + i));
  }
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  err = posix_spawn(&pid, file, &fa, &attr, cargv, cenvp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
done:
  for (uint32_t i = 0; i < nfds; i++) if (temp[i] >= 0) close(temp[i]);
  if (in[0] >= 0) close(in[0]);
  if (out[1] >= 0) close(out[1]);
  free_array(cargv);
  free_array(cenvp);
  if (err) {
    if (in[1] >= 0) close(in[1]);
    if (out[0] >= 0) close(out[0]);
    return throw_errno(env, "posix_spawn", err);
  }
  napi_value res;
  napi_create_array_with_length(env, 3, &res);
  napi_set_element(env, res, 0, int_result(env, (int32_t)pid));
  napi_set_element(env, res, 1, int_result(env, in[1]));
  napi_set_element(env, res, 2, int_result(env, out[0]));
  return res;
}

/* reap(pid) -> null while it runs, else [exitCode, signal] (-1 for the one that does not apply). */
static napi_value reap(napi_env env, napi_callback_info info) {
  int32_t a[1];
  if (int_args(env, info, 1, a) < 0) return NULL;
  int status = 0;
  pid_t r;
  do { r = waitpid(a[0], &status, WNOHANG); } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "waitpid", errno);
  napi_value res;
  if (r == 0) {
    napi_get_null(env, &res);
    return res;
  }
  napi_create_array_with_length(env, 2, &res);
  napi_set_element(env, res, 0, int_result(env, WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  napi_set_element(env, res, 1, int_result(env, WIFSIGNALED(status) ? WTERMSIG(status) : -1));
  return res;
}

static napi_value do_gettid(napi_env env, napi_callback_info info) {
  (void)info;
  return int_result(env, (int32_t)syscall(SYS_gettid));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "netlinkSocket", NULL, netlink_socket, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setns", NULL, do_setns, NULL, NULL, NULL, napi_enumerable, NULL },
    { "flock", NULL, do_flock, NULL, NULL, NULL, napi_enumerable, NULL },
    { "gettid", NULL, do_gettid, NULL, NULL, NULL, napi_enumerable, NULL },
    { "peerCredentials", NULL, peer_credentials, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unixConnect", NULL, unix_connect, NULL, NULL, NULL, napi_enumerable, NULL },
    { "spawnPiped", NULL, spawn_piped, NULL, NULL, NULL, napi_enumerable, NULL },
    { "reap", NULL, reap, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
