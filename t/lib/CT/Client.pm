package CT::Client;
# Raw clients for the tests, every wait bounded and every socket on
# loopback: connections to the test server's virtual hosts (plain or
# TLS), CONNECT requests in the shapes the tests read them, reads and
# writes that work on plain and TLS sockets, checks that a tunnel carries
# bytes both ways, many tunnels at once, HTTP/1.1 replies taken apart,
# and external clients (curl, openssl, socat) run with a time limit.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use Errno qw(EAGAIN EINTR EINPROGRESS);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use IO::Poll qw(POLLIN POLLOUT);
use IO::Select;
use IO::Socket::IP;
use POSIX ();
use Socket qw(SOL_SOCKET SO_ERROR);
use Digest::SHA ();
use Time::HiRes qw(time sleep);
use Apache::Test ();
use Apache::TestUtil qw(t_cmp);

our @EXPORT_OK = qw(yes vhost_port nonblocking readable write_all
                    read_upto read_bytes read_to_eof read_head wait_closed
                    proxy_socket send_raw tls_socket ca_file
                    server_cert_file run_cmd connect_tunnel tunnel
                    tunnel_via raw_connect open_tunnel echo_ok relays
                    exchange churn duplex duplex_all http_get
                    count_responses
                    status_of head_of header_of ps_error);

# Seconds any single wait may take unless the caller says otherwise.
our $WAIT = 10;

# For ok(): a boolean check with a description (Test.pm's two-argument
# ok() would compare the value with the description).
sub yes {
    my ($cond, $desc) = @_;
    return t_cmp($cond ? 'yes' : 'no', 'yes', $desc);
}

# The port Apache::Test gave to <VirtualHost NAME>.
sub vhost_port {
    my $name = shift;
    my $vh = Apache::Test::config()->{vhosts}->{$name}
        or die "no virtual host '$name' in the test configuration";
    return $vh->{port};
}

############################################################################
# Reads and writes.

sub nonblocking {
    my $fh = shift;
    my $flags = fcntl($fh, F_GETFL, 0) or die "fcntl: $!";
    fcntl($fh, F_SETFL, $flags | O_NONBLOCK) or die "fcntl: $!";
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

# Exactly $len bytes, or fewer when the peer closes or $wait passes.
sub read_bytes {
    my ($buf) = read_upto(@_);
    return $buf;
}

# Read until the peer closes (end of stream or reset).  Returns (bytes,
# 1 if it ended or 0 on timeout); with state => 1 the second value says
# 'eof', 'timeout' or 'error: ...' instead.  max => N keeps only about
# the first N bytes.
sub read_to_eof {
    my ($s, $wait, %o) = @_;
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    my $state;
    while (!defined $state) {
        my $left = $deadline - time;
        if ($left <= 0 || !readable($s, $left)) {
            $state = 'timeout';
            last;
        }
        my $n = sysread $s, my $chunk, 65536;
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            $state = "error: $!";
        }
        elsif ($n == 0) {
            $state = 'eof';
        }
        elsif (!defined $o{max} || length $buf < $o{max}) {
            $buf .= $chunk;
        }
    }
    return ($buf, $state) if $o{state};
    return ($buf, $state eq 'timeout' ? 0 : 1);
}

# Read a reply head (up to "\r\n\r\n") from a plain or TLS socket.
# Returns (status, {lower-case header => value}, head text, bytes read
# past the head), or an empty list on close or timeout.
sub read_head {
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
    my ($status_line, @lines) = split /\r\n/, $head;
    my ($status) = $status_line =~ m{^HTTP/\d\.\d (\d{3})};
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    return ($status, \%h, $head, $rest);
}

# True when the peer closes (EOF or reset) within the wait; data that
# arrives first is discarded and returned through $$seen, and the time
# it took goes to $$took.
sub wait_closed {
    my ($s, $wait, $seen, $took) = @_;
    my $t0 = time;
    my $sel = IO::Select->new($s);
    my $deadline = $t0 + ($wait // $WAIT);
    my $buf = '';
    while (1) {
        my $left = $deadline - time;
        return 0 if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!$n) {
            $$seen = $buf if $seen;
            $$took = time - $t0 if $took;
            return 1;
        }
    }
}

############################################################################
# Connections to the test server.

# A connected socket to a proxy: $to is a virtual host's name or a port
# on 127.0.0.1.  %o: peer (another loopback address to connect to) and
# from (a loopback source address).  Dies when it cannot connect.
sub proxy_socket {
    my ($to, %o) = @_;
    my $port = $to =~ /^\d+$/ ? $to : vhost_port($to);
    my $s = IO::Socket::IP->new(
        PeerHost => $o{peer} // '127.0.0.1',
        PeerPort => $port,
        ($o{from} ? (LocalHost => $o{from}) : ()),
        Timeout  => $WAIT,
    ) or die "connect to $to: $@";
    $s->autoflush(1);
    return $s;
}

# Connect to a virtual host of the test server and write raw bytes.
sub send_raw {
    my ($vhost, $bytes) = @_;
    my $s = proxy_socket($vhost);
    print $s $bytes;
    return $s;
}

# A TLS connection to a virtual host of the test server, verified with the
# test CA (the certificate is for "localhost").
sub tls_socket {
    my ($vhost, %opt) = @_;
    require IO::Socket::SSL;
    my $s = IO::Socket::SSL->new(
        PeerHost        => '127.0.0.1',
        PeerPort        => vhost_port($vhost),
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

# The test CA's certificate and the test servers' certificate.
sub ca_file {
    return join "/", Apache::Test::vars("sslca"),
                     Apache::Test::vars("sslcaorg"), "certs", 'ca.crt';
}

sub server_cert_file {
    return join "/", Apache::Test::vars("sslca"),
                     Apache::Test::vars("sslcaorg"), "certs", 'server.crt';
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

############################################################################
# CONNECT requests.  One request maker; the four shapes below are what
# the tests read back.

# CONNECT $target through the proxy $to (a virtual host's name or a
# port).  %o: host (the Host header, default the target), headers (more
# request lines), after (bytes sent in the same write as the request),
# tls (speak TLS to the proxy), peer, from, wait; soft => 1 returns
# undef instead of dying when the connection fails.  Returns a hash: s,
# req, and what read_head() gives as status, h, head, rest (undef when
# no head came).
sub connect_tunnel {
    my ($to, $target, %o) = @_;
    my $s = eval {
        $o{tls} ? tls_socket($to, %o) : proxy_socket($to, %o)
    };
    if (!$s) {
        return undef if $o{soft};
        die $@;
    }
    my $req = "CONNECT $target HTTP/1.1\r\n"
            . "Host: " . ($o{host} // $target) . "\r\n"
            . ($o{headers} // '') . "\r\n" . ($o{after} // '');
    # One write: the payload rides right behind the request head.
    if (!write_all($s, $req)) {
        return undef if $o{soft};
        die "writing the CONNECT: $!";
    }
    my %t = (s => $s, req => $req);
    @t{qw(status h head rest)} = read_head($s, $o{wait});
    return \%t;
}

# CONNECT $target through 127.0.0.1:$port, with $opt{early} sent in the
# same write.  Returns the socket, the status and the bytes read past
# the reply head, or an empty list.
sub tunnel {
    my ($port, $target, %opt) = @_;
    my $t = connect_tunnel($port, $target, wait => $opt{wait},
                           after => $opt{early}, soft => 1) or return;
    return unless defined $t->{status};
    return ($t->{s}, $t->{status}, $t->{rest} // '');
}

# CONNECT $target through the proxy on $port (%o: from, peer, wait);
# returns the socket, the status (0 if none), the headers (lower-case
# keys) and the head text.
sub tunnel_via {
    my ($port, $target, %o) = @_;
    my $t = connect_tunnel($port, $target, %o);
    return ($t->{s}, $t->{status} // 0, $t->{h} // {}, $t->{head} // '');
}

# CONNECT through a proxy virtual host (%opt: host, headers, after,
# wait); returns the socket and then read_head()'s list.
sub raw_connect {
    my ($vhost, $target, %opt) = @_;
    my $t = connect_tunnel($vhost, $target, %opt);
    return ($t->{s}) unless defined $t->{head};
    return ($t->{s}, @$t{qw(status h head rest)});
}

# CONNECT to 127.0.0.1:$port through the proxy virtual host $vhost.
# Options: host (the target's host, default 127.0.0.1; "[::1]" for IPv6),
# after, tls, wait.  Returns (socket, status, bytes past the head, the
# request as sent, the reply head as received).
sub open_tunnel {
    my ($vhost, $port, %opt) = @_;
    my $target = ($opt{host} // '127.0.0.1') . ":$port";
    my $t = connect_tunnel($vhost, $target, %opt, host => $target);
    return ($t->{s}, $t->{status}, $t->{rest} // '', $t->{req},
            defined $t->{head} ? "$t->{head}\r\n\r\n" : undef);
}

############################################################################
# Bytes through a tunnel.

# Send $data and read the same number of bytes back: true when they are
# the same bytes.
sub echo_ok {
    my ($s, $data, $wait) = @_;
    write_all($s, $data) or return 0;
    my $got = read_bytes($s, length $data, $wait);
    return $got eq $data;
}

# True when a line written on the client side of a tunnel arrives, the
# same, at the origin's end $o and a line back arrives too: the tunnel
# really carries data both ways.  $tag names the lines (default: a
# random ping and "pong").
sub relays {
    my ($c, $o, $tag) = @_;
    return 0 unless $c && $o;
    my $up = defined $tag ? "up $tag\n" : "ping-" . int(rand(1e9)) . "\n";
    my $down = defined $tag ? "down $tag\n" : "pong\n";
    print $c $up;
    return 0 unless read_bytes($o, length $up) eq $up;
    print $o $down;
    return read_bytes($c, length $down) eq $down;
}

# Both ends of one tunnel at once, with non-blocking I/O: $client sends
# $up and $origin sends $down, each half-closes when its part is out, and
# each reads the other's until end of stream (or $secs pass).  Returns
# (bytes the origin got, bytes the client got).
sub exchange {
    my ($client, $origin, $up, $down, $secs) = @_;
    my %out = (c => $up, o => $down);
    my %in = (c => '', o => '');
    my %eof = (c => 0, o => 0);
    my %sock = (c => $client, o => $origin);
    $_->blocking(0) for values %sock;
    my $deadline = time + ($secs // 30);
    while ((!$eof{c} || !$eof{o}) && time < $deadline) {
        my $r = IO::Select->new(map { $sock{$_} } grep { !$eof{$_} } 'c', 'o');
        my $w = IO::Select->new(map { $sock{$_} }
                                grep { defined $out{$_} } 'c', 'o');
        my ($cr, $cw) = IO::Select->select($r, $w, undef, 0.5);
        for my $k ('c', 'o') {
            my $s = $sock{$k};
            if ($cw && grep { $_ == $s } @$cw) {
                my $n = syswrite $s, $out{$k};
                substr($out{$k}, 0, $n, '') if $n;
                if (!length $out{$k}) {
                    shutdown $s, 1;
                    $out{$k} = undef;
                }
            }
            if ($cr && grep { $_ == $s } @$cr) {
                my $n = sysread $s, $in{$k}, 262144, length $in{$k};
                $eof{$k} = 1 if defined $n && $n == 0;
                $eof{$k} = 1 if !defined $n && !$!{EAGAIN} && !$!{EINTR};
            }
        }
    }
    $_->blocking(1) for values %sock;
    return ($in{o}, $in{c});
}

sub churn {
    my (%o) = @_;
    my ($port, $target, $count) = @o{qw(port target count)};
    my $window = $o{window} // 200;
    my $deadline = time + ($o{secs} // 60);
    my $req = "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my $ping = "ping\n";
    my $addr = Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1'));
    my ($started, $ok, $bad) = (0, 0, 0);
    my %c;    # fileno => state
    my $fail = sub {
        my $st = shift;
        delete $c{fileno $st->{s}};
        close $st->{s};
        $bad++;
    };
    while (($started < $count || %c) && time < $deadline) {
        while ($started < $count && keys %c < $window) {
            socket(my $s, Socket::PF_INET(), Socket::SOCK_STREAM(), 0)
                or die "socket: $!";
            nonblocking($s);
            if (!connect($s, $addr) && $! != EINPROGRESS) {
                $bad++;
                $started++;
                next;
            }
            $c{fileno $s} = { s => $s, phase => 'connect', in => '',
                              out => $req };
            $started++;
        }
        my $poll = IO::Poll->new;
        for my $st (values %c) {
            $poll->mask($st->{s} => length $st->{out} ? POLLOUT : POLLIN);
        }
        $poll->poll(0.5);
        for my $st (values %c) {
            my $ev = $poll->events($st->{s}) or next;
            my $s = $st->{s};
            if ($st->{phase} eq 'connect') {
                my $err = unpack 'i', getsockopt($s, SOL_SOCKET, SO_ERROR);
                if ($err) {
                    $fail->($st);
                    next;
                }
                $st->{phase} = 'head';
            }
            if (length $st->{out}) {
                my $w = syswrite($s, $st->{out});
                if (!defined $w) {
                    $fail->($st) unless $! == EAGAIN || $! == EINTR;
                    next;
                }
                substr($st->{out}, 0, $w, '');
                next;
            }
            my $r = sysread($s, $st->{in}, 4096, length $st->{in});
            if (!defined $r) {
                $fail->($st) unless $! == EAGAIN || $! == EINTR;
                next;
            }
            if ($st->{phase} eq 'head') {
                if ($r == 0) {
                    $fail->($st);
                    next;
                }
                my $i = index $st->{in}, "\r\n\r\n";
                next if $i < 0;
                if ($st->{in} !~ m{^HTTP/1\.\d 200 }) {
                    $fail->($st);
                    next;
                }
                $st->{in} = substr $st->{in}, $i + 4;
                $st->{phase} = 'echo';
                $st->{out} = $ping;
            }
            elsif ($st->{phase} eq 'echo') {
                if ($r == 0) {
                    $fail->($st);
                    next;
                }
                next if length $st->{in} < length $ping;
                if ($st->{in} ne $ping) {
                    $fail->($st);
                    next;
                }
                shutdown($s, 1);
                $st->{phase} = 'eof';
            }
            elsif ($st->{phase} eq 'eof' && $r == 0) {
                delete $c{fileno $s};
                close $s;
                $ok++;
            }
        }
    }
    close $_->{s} for values %c;
    return ($ok, $bad + ($count - $ok - $bad));
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

# duplex() for many tunnels at once.  Each of @t is a hash: s (the
# socket), up (a CT::Origin::Stream to send), size (bytes to read back),
# and optionally t0 (a start time).  Sends and reads until every tunnel
# got its bytes back or was closed, or $wait seconds passed; fills in
# got, sha (a Digest::SHA of what was read), closed ('eof' or the read
# error) and, with t0, secs (how long it took).  Returns @t.
sub duplex_all {
    my ($wait, @t) = @_;
    my %by_fd = map { fileno($_->{s}) => $_ } @t;
    my $deadline = time + $wait;
    for my $t (@t) {
        $t->{s}->blocking(0);
        $t->{got} //= 0;
        $t->{pending} //= '';
        $t->{sha} //= Digest::SHA->new(256);
    }
    while (time < $deadline) {
        my @open = grep { $_->{got} < $_->{size} && !$_->{closed} } @t;
        last unless @open;
        my $r = IO::Select->new(map { $_->{s} } @open);
        my $w = IO::Select->new(map { $_->{s} }
                                grep { length $_->{pending}
                                       || !$_->{up}->done } @open);
        my ($cr, $cw) = IO::Select->select($r, $w, undef, 0.5);
        for my $s (@{ $cw || [] }) {
            my $t = $by_fd{ fileno $s };
            $t->{pending} = $t->{up}->next(65536) unless length $t->{pending};
            my $k = syswrite $s, $t->{pending};
            substr($t->{pending}, 0, $k, '') if $k;
        }
        for my $s (@{ $cr || [] }) {
            my $t = $by_fd{ fileno $s };
            my $k = sysread $s, my $buf, 262144;
            if ($k) {
                $t->{got} += $k;
                $t->{sha}->add($buf);
            }
            elsif (defined $k || !$!{EAGAIN}) {
                $t->{closed} = defined $k ? 'eof' : "$!";
            }
            $t->{secs} = time - $t->{t0}
                if defined $t->{t0}
                   && ($t->{got} >= $t->{size} || $t->{closed});
        }
    }
    return @t;
}

# GET $path from 127.0.0.1:$port: (status, body) or an empty list.
sub http_get {
    my ($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Timeout => $WAIT)
        or return;
    write_all($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
                  . "Connection: close\r\n\r\n") or return;
    my ($status, $h, $head, $rest) = read_head($s);
    return unless defined $status;
    my ($body) = read_to_eof($s);
    return ($status, $rest . $body);
}

############################################################################
# Replies taken apart.

# How many HTTP responses a byte stream holds (status lines at the start
# of the stream or right after a previous message's end).
sub count_responses {
    my $bytes = shift;
    my $n = 0;
    $n++ while $bytes =~ m{(?:\A|\n)HTTP/\d\.\d \d{3} }g;
    return $n;
}

# The status code of the first response in a byte stream.
sub status_of {
    my $bytes = shift // '';
    my ($status) = $bytes =~ m{\AHTTP/\d\.\d (\d{3})};
    return $status // '';
}

# The head (status line and headers) of the first response.
sub head_of {
    my $bytes = shift // '';
    my ($head) = split /\r\n\r\n/, $bytes, 2;
    return $head // '';
}

# A header's value in a head; undef when absent.
sub header_of {
    my ($head, $name) = @_;
    return $head =~ /^\Q$name\E:[ \t]*(.*?)\r?$/mi ? $1 : undef;
}

# The error type of an RFC 9209 Proxy-Status header ("name; error=type"),
# or '' when there is none or it is not in that shape.
sub ps_error {
    my $h = shift;
    my $v = $h->{'proxy-status'} // return '';
    return $v =~ /^\s*(?:[A-Za-z*][\w:\/!#\$%&'*+\-.^`|~]*|"[^"]*")\s*;\s*error=([a-z_]+)\s*$/
           ? $1 : '';
}

1;
