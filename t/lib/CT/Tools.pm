package CT::Tools;
# Client-side helpers for the relay tests, every wait bounded:
#   run_cmd         run curl, openssl or socat with a time limit, capturing
#                   stdout and stderr
#   open_tunnel     CONNECT through a proxy virtual host, plain or over TLS
#   read_upto, read_to_eof, read_head_any, write_all
#                   reads and writes that work on plain and TLS sockets
#   duplex          send a CT::Origin::Stream while reading and hashing what
#                   comes back, at once, without deadlock
#   log_mark, wait_log_line, wait_tunnel_record
#                   find the lines a tunnel left in t/logs/* (the access
#                   log and the end-of-tunnel log, tunnels_log)
#   httpd_children, child_for_local_port, vm_rss_kib
#                   the httpd child serving a tunnel and its memory
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Select;
use POSIX ();
use Digest::SHA ();
use Time::HiRes qw(time sleep);
use Apache::Test ();
use CT::Raw ();

our @EXPORT_OK = qw(run_cmd open_tunnel tls_socket readable read_upto read_to_eof
                    read_head_any write_all duplex log_path log_mark
                    wait_log_line log_lines_since wait_tunnel_record
                    httpd_children
                    child_for_local_port vm_rss_kib ca_file
                    server_cert_file);

# Seconds a single wait may take unless the caller says otherwise.
our $WAIT = 10;

sub vars { Apache::Test::vars(@_) }

# The test CA's certificate and the test servers' certificate.
sub ca_file {
    return join '/', vars('sslca'), vars('sslcaorg'), 'certs', 'ca.crt';
}

sub server_cert_file {
    return join '/', vars('sslca'), vars('sslcaorg'), 'certs', 'server.crt';
}

# Run a command (array ref) with a time limit.  Returns a hash: rc (exit
# code, -1 if killed), out, err, timed_out, elapsed.
sub run_cmd {
    my (%a) = @_;
    my @cmd = @{ $a{cmd} };
    my $limit = $a{timeout} // 30;
    my $stdin = $a{stdin} // '';
    local $SIG{PIPE} = 'IGNORE';
    pipe(my $in_r, my $in_w) or die "pipe: $!";
    pipe(my $out_r, my $out_w) or die "pipe: $!";
    pipe(my $err_r, my $err_w) or die "pipe: $!";
    my $t0 = time;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<&', $in_r or POSIX::_exit(126);
        open STDOUT, '>&', $out_w or POSIX::_exit(126);
        open STDERR, '>&', $err_w or POSIX::_exit(126);
        close $_ for $in_w, $out_r, $err_r;
        { exec { $cmd[0] } @cmd }
        POSIX::_exit(127);
    }
    close $_ for $in_r, $out_w, $err_w;
    $in_w->blocking(0);
    my %buf = (out => '', err => '');
    my %fh = (out => $out_r, err => $err_r);
    my $r = IO::Select->new($out_r, $err_r);
    my $w = IO::Select->new;
    if (length $stdin) {
        $w->add($in_w);
    }
    else {
        close $in_w;
    }
    my $timed_out = 0;
    while ($r->count || $w->count) {
        my $left = $t0 + $limit - time;
        if ($left <= 0) {
            $timed_out = 1;
            last;
        }
        my ($cr, $cw) = IO::Select->select($r, $w, undef, $left);
        for my $h (@{ $cw || [] }) {
            my $n = syswrite $h, $stdin;
            if (defined $n) {
                substr($stdin, 0, $n, '');
            }
            if ((!defined $n && !$!{EAGAIN}) || !length $stdin) {
                $w->remove($h);
                close $h;
            }
        }
        for my $h (@{ $cr || [] }) {
            my ($name) = grep { $fh{$_} == $h } keys %fh;
            my $n = sysread $h, $buf{$name}, 65536, length $buf{$name};
            $r->remove($h) unless $n;
        }
    }
    if ($timed_out) {
        kill 'KILL', $pid;
    }
    # The command closed its output; let it exit, within the limit.
    my $deadline = time + ($timed_out ? 5 : $limit);
    my $done = 0;
    while (time < $deadline) {
        $done = waitpid($pid, POSIX::WNOHANG()) == $pid and last;
        sleep 0.02;
    }
    if (!$done) {
        $timed_out = 1;
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
    my $rc = ($? & 127) ? -1 : $? >> 8;
    return { rc => $rc, out => $buf{out}, err => $buf{err},
             timed_out => $timed_out, elapsed => time - $t0 };
}

# A TLS connection to a virtual host of the test server, verified with the
# test CA (the certificate is for "localhost").
sub tls_socket {
    my ($vhost, %opt) = @_;
    require IO::Socket::SSL;
    my $s = IO::Socket::SSL->new(
        PeerHost        => '127.0.0.1',
        PeerPort        => CT::Raw::vhost_port($vhost),
        SSL_hostname    => 'localhost',
        SSL_verifycn_name => 'localhost',
        SSL_verifycn_scheme => 'http',
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file     => ca_file(),
        Timeout         => $opt{wait} // $WAIT,
    ) or die "TLS connect to $vhost: $IO::Socket::SSL::SSL_ERROR";
    $s->autoflush(1);
    return $s;
}

# Something to read now or within $left seconds (TLS keeps decrypted bytes
# the socket no longer shows).
sub readable {
    my ($s, $left) = @_;
    return 1 if $s->isa('IO::Socket::SSL') && $s->pending;
    return IO::Select->new($s)->can_read($left > 0 ? $left : 0);
}

# Write all of $data; false on error.
sub write_all {
    my ($s, $data) = @_;
    my $off = 0;
    my $deadline = time + $WAIT * 6;
    while ($off < length $data && time < $deadline) {
        my $n = syswrite $s, $data, length($data) - $off, $off;
        if (!defined $n) {
            return 0 unless $!{EINTR} || $!{EAGAIN};
            # A non-blocking socket: wait until it takes more.
            IO::Select->new($s)->can_write(1) if $!{EAGAIN};
            next;
        }
        $off += $n;
    }
    return $off == length $data;
}

# Read exactly $len bytes unless the peer closes or $wait passes first.
# Returns (data, state): state is 'ok', 'eof', 'timeout' or 'error: ...'.
sub read_upto {
    my ($s, $len, $wait) = @_;
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    while (length $buf < $len) {
        my $left = $deadline - time;
        return ($buf, 'timeout') if $left <= 0 || !readable($s, $left);
        my $n = sysread $s, $buf, $len - length $buf, length $buf;
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            return ($buf, "error: $!");
        }
        return ($buf, 'eof') if $n == 0;
    }
    return ($buf, 'ok');
}

# Read until the peer closes, at most $max bytes kept.  Returns (data,
# state): state is 'eof', 'timeout' or 'error: ...'.
sub read_to_eof {
    my ($s, $wait, $max) = @_;
    my $deadline = time + ($wait // $WAIT);
    $max //= 1 << 20;
    my $buf = '';
    while (1) {
        my $left = $deadline - time;
        return ($buf, 'timeout') if $left <= 0 || !readable($s, $left);
        my $n = sysread $s, my $chunk, 65536;
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            return ($buf, "error: $!");
        }
        return ($buf, 'eof') if $n == 0;
        $buf .= $chunk if length $buf < $max;
    }
}

# Read a reply head from a plain or TLS socket; returns (status, head,
# bytes read past the head) or an empty list on close or timeout.
sub read_head_any {
    my ($s, $wait) = @_;
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $left = $deadline - time;
        return () if $left <= 0 || !readable($s, $left);
        my $n = sysread $s, $buf, 65536, length $buf;
        next if !defined $n && ($!{EINTR} || $!{EAGAIN});
        return () unless $n;
    }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($status) = $head =~ m{^HTTP/\d\.\d (\d{3})};
    return ($status, $head, $rest);
}

# CONNECT to 127.0.0.1:$port through the proxy virtual host $vhost.
# Options: host (the target's host, default 127.0.0.1; "[::1]" for IPv6),
# after (bytes sent in the same write as the request), tls (speak TLS to
# the proxy), wait.  Returns (socket, status, bytes past the head,
# the request as sent, the reply head as received).
sub open_tunnel {
    my ($vhost, $port, %opt) = @_;
    my $target = ($opt{host} // '127.0.0.1') . ":$port";
    my $req = "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n"
            . ($opt{after} // '');
    my $s = $opt{tls} ? tls_socket($vhost, %opt)
                      : CT::Raw::proxy_socket($vhost);
    # One write: the payload rides right behind the request head.
    write_all($s, $req) or die "writing the CONNECT: $!";
    my ($status, $head, $rest) = read_head_any($s, $opt{wait});
    return ($s, $status, $rest // '', $req, defined $head ? "$head\r\n\r\n"
                                                         : undef);
}

# Send $stream (a CT::Origin::Stream) on $s while reading $expect bytes,
# both at once with non-blocking I/O.  Returns a hash: sent, got, sha256
# (of what was read), state ('ok', 'eof', 'timeout', 'error: ...').
sub duplex {
    my ($s, $stream, $expect, $wait) = @_;
    my $deadline = time + ($wait // 120);
    my $sha = Digest::SHA->new(256);
    my ($got, $pending, $state) = (0, '', 'ok');
    my $tls = $s->isa('IO::Socket::SSL');
    $s->blocking(0);
    while (length $pending || !$stream->done || $got < $expect) {
        my $left = $deadline - time;
        if ($left <= 0) {
            $state = 'timeout';
            last;
        }
        $pending = $stream->next(262144)
            if !length $pending && !$stream->done;
        my $r = IO::Select->new;
        $r->add($s) if $got < $expect;
        my $w = IO::Select->new;
        $w->add($s) if length $pending;
        my ($cr, $cw) = ($tls && $s->pending) ? ([$s], [])
                      : IO::Select->select($r, $w, undef,
                                           $left < 1 ? $left : 1);
        if ($cr && @$cr) {
            my $n = sysread $s, my $buf, 262144;
            if (defined $n && $n > 0) {
                $got += $n;
                $sha->add($buf);
            }
            elsif (defined $n) {
                $state = 'eof';
                last;
            }
            elsif (!$!{EAGAIN} && !$!{EINTR}) {
                $state = "error: read: $!";
                last;
            }
        }
        if ($cw && @$cw) {
            my $n = syswrite $s, $pending;
            if (defined $n) {
                substr($pending, 0, $n, '');
            }
            elsif (!$!{EAGAIN} && !$!{EINTR}) {
                $state = "error: write: $!";
                last;
            }
        }
    }
    $s->blocking(1);
    return { sent => $stream->{pos} - length $pending, got => $got,
             sha256 => $sha->hexdigest, state => $state };
}

# --- logs ---------------------------------------------------------------

sub log_path { join '/', vars('t_logs'), $_[0] }

# Where a log ends now: lines after this mark are this test's.
sub log_mark { -s log_path($_[0]) // 0 }

# The lines of log $name written after $mark.
sub log_lines_since {
    my ($name, $mark) = @_;
    open my $fh, '<', log_path($name) or return ();
    seek $fh, $mark, 0;
    local $/ = "\n";
    my @lines = <$fh>;
    close $fh;
    # A line still being written is not a line yet.
    pop @lines if @lines && $lines[-1] !~ /\n\z/;
    return @lines;
}

# The first line of log $name after $mark matching $re, waiting up to
# $wait seconds for it; undef if none.
sub wait_log_line {
    my ($name, $mark, $re, $wait) = @_;
    my $deadline = time + ($wait // $WAIT);
    while (1) {
        for (log_lines_since($name, $mark)) {
            return $_ if $_ =~ $re;
        }
        return undef if time >= $deadline;
        sleep 0.1;
    }
}

# The end-of-tunnel record (ConnectTunnelLog, t/logs/tunnels_log) of the
# tunnel to $target ("host:port" as in the CONNECT) written after $mark,
# waiting up to $wait seconds for it; a hash of its fields (client,
# target, address, mode, end, up, down, duration_ms), or undef.
sub wait_tunnel_record {
    my ($mark, $target, $wait) = @_;
    my $line = wait_log_line('tunnels_log', $mark,
                             qr/ target=\Q$target\E /, $wait) // return undef;
    my %rec = $line =~ / (\w+)=(\S+)/g;
    return \%rec;
}

# --- the httpd children -------------------------------------------------

# The PIDs whose parent is the test server's main process.
sub httpd_children {
    open my $fh, '<', log_path('httpd.pid') or return ();
    my $master = <$fh>;
    close $fh;
    return () unless defined $master && $master =~ /(\d+)/;
    $master = $1;
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $st, '<', "/proc/$pid/stat" or next;
        my $line = <$st> // '';
        close $st;
        push @kids, $pid if $line =~ /^\d+ \(.*\) \S+ (\d+) /s
                            && $1 == $master;
    }
    closedir $dh;
    return @kids;
}

# The httpd child holding the TCP socket whose local port is $port (the
# origin side of a tunnel: the port the origin saw as its peer's).
sub child_for_local_port {
    my $port = shift;
    my %inodes;
    for my $table ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $table or next;
        <$fh>;
        while (<$fh>) {
            my @f = split ' ';
            my ($lport) = $f[1] =~ /:([0-9A-F]{4})$/ or next;
            $inodes{ $f[9] } = 1 if hex($lport) == $port && $f[9];
        }
        close $fh;
    }
    return undef unless %inodes;
    for my $pid (httpd_children()) {
        opendir my $dh, "/proc/$pid/fd" or next;
        for my $fd (readdir $dh) {
            my $link = readlink "/proc/$pid/fd/$fd" // next;
            if ($link =~ /^socket:\[(\d+)\]$/ && $inodes{$1}) {
                closedir $dh;
                return $pid;
            }
        }
        closedir $dh;
    }
    return undef;
}

# Resident set size of a process in KiB (undef if it is gone).
sub vm_rss_kib {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    return undef;
}

1;
