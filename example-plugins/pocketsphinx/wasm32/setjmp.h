/* Debian's wasi-libc has no setjmp.h (WebAssembly could not unwind the stack when it
 * was built). PocketSphinx includes it only for ckd_set_jump(), which lets a program
 * longjmp out of a failed allocation; this plugin never sets a jump target, so a failed
 * allocation exits (the host ends the job) and neither function is ever called. */

#ifndef PLUGIN_SETJMP_H
#define PLUGIN_SETJMP_H

typedef int jmp_buf[1];

#define setjmp(env) ((void)(env), 0)

static inline _Noreturn void longjmp(jmp_buf env, int value) {
    (void)env;
    (void)value;
    __builtin_trap();
}

#endif
