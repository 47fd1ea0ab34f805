/*
 * rollbridge notify helper, x86-64 Linux, no libc. Usage: notify-helper <socket path>.
 * Binds an AF_UNIX SOCK_DGRAM socket (sd_notify's NOTIFY_SOCKET) at the path with SO_PASSCRED, writes
 * "BND\n" on stdout once bound, then for each datagram one frame on stdout:
 *   u32 dataBytes, u32 controlBytes, u32 msgFlags (little endian), control bytes, data bytes,
 * then waits for one byte on stdin: the daemon has checked that datagram (while its sender still runs).
 * Only then are descriptors passed with SCM_RIGHTS closed: systemd-notify's BARRIER=1 waits for that, so
 * it cannot exit before its READY=1 was checked, and no descriptor piles up here. Ends at EOF on stdin
 * and with its parent (PR_SET_PDEATHSIG, SIGKILL). Exit codes: 2 usage/path, 3 socket,
 * 4 setsockopt, 5 bind, 6 recvmsg, 7 writev, 8 stdin closed.
 */
        .globl _start
        .text
_start:
        mov     $157, %eax              /* prctl(PR_SET_PDEATHSIG, SIGKILL) */
        mov     $1, %edi
        mov     $9, %esi
        syscall
        mov     (%rsp), %rax            /* argc */
        cmp     $2, %rax
        jne     fail_usage
        mov     16(%rsp), %r12          /* argv[1] */
        mov     $41, %eax               /* socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) */
        mov     $1, %edi
        mov     $0x80002, %esi
        xor     %edx, %edx
        syscall
        test    %rax, %rax
        js      fail_socket
        mov     %rax, %r13
        mov     $54, %eax               /* setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, 4) */
        mov     %r13, %rdi
        mov     $1, %esi
        mov     $16, %edx
        lea     one(%rip), %r10
        mov     $4, %r8d
        syscall
        test    %rax, %rax
        js      fail_setsockopt
        lea     addr(%rip), %rdi        /* sockaddr_un: sun_family, then the path (at most 107 bytes) */
        movw    $1, (%rdi)
        lea     2(%rdi), %rdx
        mov     %r12, %rsi
        mov     $108, %ecx
copy:
        movb    (%rsi), %al
        test    %al, %al
        jz      copied
        dec     %ecx
        jz      fail_usage
        movb    %al, (%rdx)
        inc     %rsi
        inc     %rdx
        jmp     copy
copied:
        mov     $49, %eax               /* bind(fd, &addr, sizeof addr) */
        mov     %r13, %rdi
        lea     addr(%rip), %rsi
        mov     $110, %edx
        syscall
        test    %rax, %rax
        js      fail_bind
        mov     $1, %eax                /* write(1, "BND\n", 4) */
        mov     $1, %edi
        lea     bound(%rip), %rsi
        mov     $4, %edx
        syscall
next:
        lea     msg(%rip), %rsi
        movq    $64, 40(%rsi)           /* msg_controllen */
        movl    $0, 48(%rsi)            /* msg_flags */
        mov     $47, %eax               /* recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) */
        mov     %r13, %rdi
        mov     $0x40000000, %edx
        syscall
        cmp     $-4, %rax               /* EINTR */
        je      next
        test    %rax, %rax
        js      fail_recv
        lea     msg(%rip), %rsi
        lea     hdr(%rip), %rdi
        mov     %eax, (%rdi)
        mov     40(%rsi), %rcx
        mov     %ecx, 4(%rdi)
        mov     48(%rsi), %ecx
        mov     %ecx, 8(%rdi)
        lea     out(%rip), %rsi
        mov     4(%rdi), %ecx
        mov     %rcx, 24(%rsi)          /* out[1].iov_len = controllen */
        mov     %rax, 40(%rsi)          /* out[2].iov_len = data bytes */
        mov     $20, %eax               /* writev(1, out, 3) */
        mov     $1, %edi
        mov     $3, %edx
        syscall
        test    %rax, %rax
        js      fail_write
ack:
        mov     $0, %eax                /* read(0, &ackbyte, 1): the daemon checked the frame */
        mov     $0, %edi
        lea     ackbyte(%rip), %rsi
        mov     $1, %edx
        syscall
        cmp     $-4, %rax               /* EINTR */
        je      ack
        test    %rax, %rax
        jle     fail_ack                /* EOF or error: the daemon is gone */
        lea     msg(%rip), %rsi
        mov     40(%rsi), %r15          /* msg_controllen */
        lea     cbuf(%rip), %r14        /* the current cmsghdr */
        add     %r14, %r15              /* the end of the control data */
cmsg:
        lea     16(%r14), %rcx
        cmp     %r15, %rcx
        ja      cmsg_done
        mov     (%r14), %rbx            /* cmsg_len */
        cmp     $16, %rbx
        jb      cmsg_done
        lea     (%r14,%rbx), %rdx       /* the end of this message */
        cmp     %r15, %rdx
        ja      cmsg_done
        cmpl    $1, 8(%r14)             /* SOL_SOCKET */
        jne     cmsg_next
        cmpl    $1, 12(%r14)            /* SCM_RIGHTS */
        jne     cmsg_next
        lea     16(%r14), %r12
close_fd:
        lea     4(%r12), %rcx
        cmp     %rdx, %rcx
        ja      cmsg_next
        mov     $3, %eax                /* close(fd) */
        movl    (%r12), %edi
        syscall
        add     $4, %r12
        jmp     close_fd
cmsg_next:
        add     $7, %rbx
        and     $-8, %rbx
        add     %rbx, %r14
        jmp     cmsg
cmsg_done:
        jmp     next
fail_usage:
        mov     $2, %edi
        jmp     quit
fail_socket:
        mov     $3, %edi
        jmp     quit
fail_setsockopt:
        mov     $4, %edi
        jmp     quit
fail_bind:
        mov     $5, %edi
        jmp     quit
fail_recv:
        mov     $6, %edi
        jmp     quit
fail_write:
        mov     $7, %edi
        jmp     quit
fail_ack:
        mov     $8, %edi
quit:
        mov     $60, %eax               /* exit(code) */
        syscall

        .data
        .balign 8
one:    .long   1
bound:  .ascii  "BND\n"
iov:    .quad   buf, 4096
msg:    .quad   0, 0                    /* msg_name, msg_namelen */
        .quad   iov, 1                  /* msg_iov, msg_iovlen */
        .quad   cbuf, 64                /* msg_control, msg_controllen */
        .long   0, 0                    /* msg_flags */
out:    .quad   hdr, 12, cbuf, 0, buf, 0

        .bss
        .balign 8
addr:   .skip   112
hdr:    .skip   16
ackbyte: .skip  8
cbuf:   .skip   64
buf:    .skip   4096
        .section .note.GNU-stack,"",@progbits
