/*
 * rollbridge notify helper, AArch64 Linux, no libc: the same program as x64.S (see there for the
 * protocol and the exit codes); registers x20-x28 hold what survives the loop.
 */
        .globl _start
        .text
_start:
        mov     x0, #1                  /* prctl(PR_SET_PDEATHSIG, SIGKILL) */
        mov     x1, #9
        mov     x8, #167
        svc     #0
        ldr     x0, [sp]                /* argc */
        cmp     x0, #2
        b.ne    fail_usage
        ldr     x19, [sp, #16]          /* argv[1] */
        mov     x0, #1                  /* socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) */
        mov     x1, #2
        movk    x1, #8, lsl #16
        mov     x2, #0
        mov     x8, #198
        svc     #0
        tbnz    x0, #63, fail_socket
        mov     x20, x0
        mov     x1, #1                  /* setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, 4) */
        mov     x2, #16
        adr     x3, one
        mov     x4, #4
        mov     x8, #208
        svc     #0
        tbnz    x0, #63, fail_setsockopt
        adrp    x21, addr               /* sockaddr_un: sun_family, then the path (at most 107 bytes) */
        add     x21, x21, :lo12:addr
        mov     w0, #1
        strh    w0, [x21]
        add     x2, x21, #2
        mov     x1, x19
        mov     x3, #108
copy:
        ldrb    w0, [x1]
        cbz     w0, copied
        subs    x3, x3, #1
        b.eq    fail_usage
        strb    w0, [x2], #1
        add     x1, x1, #1
        b       copy
copied:
        mov     x0, x20                 /* bind(fd, &addr, sizeof addr) */
        mov     x1, x21
        mov     x2, #110
        mov     x8, #200
        svc     #0
        tbnz    x0, #63, fail_bind
        mov     x0, #1                  /* write(1, "BND\n", 4) */
        adr     x1, bound
        mov     x2, #4
        mov     x8, #64
        svc     #0
        adrp    x22, msg
        add     x22, x22, :lo12:msg
        adrp    x23, hdr
        add     x23, x23, :lo12:hdr
        adrp    x24, out
        add     x24, x24, :lo12:out
next:
        mov     x0, #64
        str     x0, [x22, #40]          /* msg_controllen */
        str     wzr, [x22, #48]         /* msg_flags */
        mov     x0, x20                 /* recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) */
        mov     x1, x22
        mov     x2, #0x40000000
        mov     x8, #212
        svc     #0
        cmn     x0, #4                  /* EINTR */
        b.eq    next
        tbnz    x0, #63, fail_recv
        str     w0, [x23]
        ldr     x1, [x22, #40]
        str     w1, [x23, #4]
        ldr     w2, [x22, #48]
        str     w2, [x23, #8]
        str     x1, [x24, #24]          /* out[1].iov_len = controllen */
        str     x0, [x24, #40]          /* out[2].iov_len = data bytes */
        mov     x0, #1                  /* writev(1, out, 3) */
        mov     x1, x24
        mov     x2, #3
        mov     x8, #66
        svc     #0
        tbnz    x0, #63, fail_write
ack:
        mov     x0, #0                  /* read(0, &ackbyte, 1): the daemon checked the frame */
        adrp    x1, ackbyte
        add     x1, x1, :lo12:ackbyte
        mov     x2, #1
        mov     x8, #63
        svc     #0
        cmn     x0, #4                  /* EINTR */
        b.eq    ack
        cmp     x0, #0
        b.le    fail_ack                /* EOF or error: the daemon is gone */
        ldr     x25, [x22, #40]         /* msg_controllen */
        adrp    x26, cbuf               /* the current cmsghdr */
        add     x26, x26, :lo12:cbuf
        add     x25, x26, x25           /* the end of the control data */
cmsg:
        add     x9, x26, #16
        cmp     x9, x25
        b.hi    cmsg_done
        ldr     x27, [x26]              /* cmsg_len */
        cmp     x27, #16
        b.lo    cmsg_done
        add     x10, x26, x27           /* the end of this message */
        cmp     x10, x25
        b.hi    cmsg_done
        ldr     w11, [x26, #8]          /* SOL_SOCKET */
        cmp     w11, #1
        b.ne    cmsg_next
        ldr     w11, [x26, #12]         /* SCM_RIGHTS */
        cmp     w11, #1
        b.ne    cmsg_next
        add     x28, x26, #16
close_fd:
        add     x9, x28, #4
        cmp     x9, x10
        b.hi    cmsg_next
        ldr     w0, [x28]               /* close(fd) */
        mov     x8, #57
        svc     #0
        add     x28, x28, #4
        b       close_fd
cmsg_next:
        add     x27, x27, #7
        and     x27, x27, #~7
        add     x26, x26, x27
        b       cmsg
cmsg_done:
        b       next
fail_usage:
        mov     x0, #2
        b       quit
fail_socket:
        mov     x0, #3
        b       quit
fail_setsockopt:
        mov     x0, #4
        b       quit
fail_bind:
        mov     x0, #5
        b       quit
fail_recv:
        mov     x0, #6
        b       quit
fail_write:
        mov     x0, #7
        b       quit
fail_ack:
        mov     x0, #8
quit:
        mov     x8, #93                 /* exit(code) */
        svc     #0

        .balign 4
one:    .word   1
bound:  .ascii  "BND\n"

        .data
        .balign 8
iov:    .quad   buf, 4096
msg:    .quad   0, 0                    /* msg_name, msg_namelen */
        .quad   iov, 1                  /* msg_iov, msg_iovlen */
        .quad   cbuf, 64                /* msg_control, msg_controllen */
        .word   0, 0                    /* msg_flags */
out:    .quad   hdr, 12, cbuf, 0, buf, 0

        .bss
        .balign 8
addr:   .skip   112
hdr:    .skip   16
ackbyte: .skip  8
cbuf:   .skip   64
buf:    .skip   4096

        .section .note.GNU-stack,"",@progbits
