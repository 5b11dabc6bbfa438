/* A handler that prints a native backtrace when the process dies of SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL or SIGABRT, as "file+0xoffset" lines that addr2line resolves; it installs
 * itself when loaded (LD_PRELOAD). Written here because the GPU machine has no gdb and glibc
 * no longer ships libSegFault; tools/gpu's pytest step builds it there and reruns a crashed
 * suite under it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char alternate_stack[1 << 16];
/* The stderr of the process's start, kept: pytest points fd 2 at a capture file during each
 * test, and that file is lost when the process dies. */
static int report_fd = STDERR_FILENO;

static void print_frames(int signal_number) {
  char line[1024];
  int length = snprintf(line, sizeof line, "crash_backtrace: signal %d\n", signal_number);
  if (write(report_fd, line, (size_t)length) < 0) return;
  void* frames[64];
  const int count = backtrace(frames, 64);
  for (int i = 0; i < count; ++i) {
    Dl_info info;
    if (dladdr(frames[i], &info) && info.dli_fname) {
      length = snprintf(line, sizeof line, "crash_backtrace: #%d %s+0x%lx (%s)\n", i,
                        info.dli_fname, (unsigned long)((char*)frames[i] - (char*)info.dli_fbase),
                        info.dli_sname ? info.dli_sname : "?");
    } else {
      length = snprintf(line, sizeof line, "crash_backtrace: #%d %p\n", i, frames[i]);
    }
    if (length > 0 && write(report_fd, line, (size_t)length) < 0) return;
  }
}

static void on_crash(int signal_number) {
  print_frames(signal_number);
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

static void install(void) {
  /* backtrace() loads libgcc_s on its first call, which allocates: do that now, not in a
   * handler that may run on a corrupted heap. */
  void* warm_up[1];
  backtrace(warm_up, 1);
  stack_t stack;
  memset(&stack, 0, sizeof stack);
  stack.ss_sp = alternate_stack;
  stack.ss_size = sizeof alternate_stack;
  sigaltstack(&stack, NULL);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_crash;
  action.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; ++i) {
    sigaction(signals[i], &action, NULL);
  }
}

__attribute__((constructor)) static void install_at_load(void) {
  const int kept = dup(STDERR_FILENO);
  if (kept >= 0) report_fd = kept;
  install();
}
