package CT::Origin;
# Origin servers for the relay tests: small Perl TCP servers the test
# forks on 127.0.0.1, port 0 (an ephemeral port), each connection served
# by its own forked child.  Every connection reports what it saw (the
# peer port, byte counts, SHA-256 digests, when it saw an end of stream)
# to the test through a pipe, so a test can compare what the origin got
# with what the client sent without trusting the tunnel for the report.
#
#   my $o = CT::Origin->start('sink', expect => 1024);
#   ... tunnel to 127.0.0.1:$o->port ...
#   my $r = $o->wait_for(1, 'sha256');     # connection 1's report
#   $o->stop;                              # kills what start() forked
#
# Kinds (options in parentheses):
#   echo        writes back what it reads until end of stream
#   sink        waits `delay` seconds without reading (default 0), then
#               reads until end of stream (or `expect` bytes), reports
#               bytes/sha256, then (unless reply => 0) waits `reply_delay`
#               seconds and writes "SINK bytes=N sha256=HEX\n"; after an
#               `expect` reply it keeps reading and reports `extra` bytes
#   source      writes `bytes` of a CT::Origin::Stream (`seed`), as fast as
#               it can or `chunk` bytes every `interval` seconds, reporting
#               its progress as `sent` every 0.2 s; then closes
#   duplex      writes `bytes` of a stream while reading `expect` bytes, at
#               once (non-blocking); reports `recv_done` (with `bytes`,
#               `sha256`) and `send_done` (with `sent_sha256`) as each way
#               completes, `done` when both have, then closes
#   shut_first  writes `greeting`, shuts its write side down, then reads
#               until end of stream and reports what it got (`got`: the
#               first 2000 bytes, `bytes`, `sha256`)
#   hold        reads (and discards) until end of stream; reports when
#
# Common options: addr (listen address, default 127.0.0.1; '::1' for
# IPv6), port (default 0: an ephemeral one), limit (seconds a connection
# may last).  Each report also has peer_addr, the address it saw.
#
# Every process is bounded in time by alarm(); stop() (or DESTROY) kills
# the server's process group, which holds only what start() forked.
#
# Also here: start_origin(), one forked process with an echo, a "bye" and
# a "shut" listener that records every connection's bytes and digest in
# a file (for many tunnels at once); and plain listeners for tests that
# drive the origin's end themselves: listener(), full_listener() (its
# accept queue full), closed_port(), connect_refused(), accept_within()
# and take_accepts().
use strict;
use warnings FATAL => 'all';
use IO::Socket::IP;
use IO::Select;
use POSIX ();
use Socket qw(SHUT_WR PF_INET SOCK_STREAM pack_sockaddr_in
              unpack_sockaddr_in inet_aton);
use Errno qw(EAGAIN EINTR);
use File::Temp ();
use IO::Poll qw(POLLIN POLLOUT POLLERR POLLHUP);
use IO::Socket::INET;
use Digest::SHA ();
use Time::HiRes qw(time sleep);
use Exporter qw(import);
use CT::Client qw(write_all nonblocking);

our @EXPORT_OK = qw(start_origin listener full_listener closed_port
                    connect_refused accept_within take_accepts
                    read_request_head);

# Seconds any origin process may live at most.
our $LIFETIME = 240;

# Connections one origin server accepts at most.
our $MAX_CONNS = 1000;

my %KINDS = (
    echo       => \&h_echo,
    sink       => \&h_sink,
    source     => \&h_source,
    duplex     => \&h_duplex,
    shut_first => \&h_shut_first,
    hold       => \&h_hold,
);

# Fork an origin of the given kind; returns the handle.
sub start {
    my ($class, $kind, %opt) = @_;
    my $handler = ref $kind eq 'CODE' ? $kind : $KINDS{$kind}
        or die "unknown origin kind '$kind'";
    my $l = IO::Socket::IP->new(LocalHost => $opt{addr} // '127.0.0.1',
                                LocalPort => $opt{port} // 0,
                                Proto     => 'tcp',
                                Listen    => 512,
                                ReuseAddr => 1)
        or die "origin: listen: $@";
    pipe(my $rd, my $wr) or die "origin: pipe: $!";
    my $pid = fork;
    die "origin: fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $rd;
        POSIX::setpgid(0, 0);
        eval { serve($l, $wr, $handler, \%opt) };
        POSIX::_exit(0);
    }
    # Both sides set the group, so that it exists whoever runs first.
    POSIX::setpgid($pid, $pid);
    close $wr;
    my $self = bless {
        pid   => $pid,
        port  => $l->sockport,
        rd    => $rd,
        buf   => '',
        conns => {},
        eof   => 0,
    }, $class;
    close $l;
    return $self;
}

sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }

# The accept loop, in the forked server.
sub serve {
    my ($l, $wr, $handler, $opt) = @_;
    $SIG{CHLD} = 'IGNORE';
    $SIG{PIPE} = 'IGNORE';
    $SIG{$_} = 'DEFAULT' for qw(TERM INT ALRM);
    alarm $LIFETIME;
    my $n = 0;
    while ($n < $MAX_CONNS) {
        my $c = $l->accept;
        if (!$c) {
            sleep 0.05;     # EINTR, or out of descriptors: try again
            next;
        }
        $n++;
        my $pid = fork;
        if (!defined $pid) {
            close $c;
            next;
        }
        if ($pid == 0) {
            close $l;
            alarm($opt->{limit} // $LIFETIME);
            my $conn = $n;
            my $report = sub { report_line($wr, $conn, @_) };
            $report->(peer_port => $c->peerport,
                      peer_addr => $c->peerhost,
                      accepted  => sprintf('%.3f', time));
            eval { $handler->($c, $report, $opt); 1 }
                or $report->(died => substr("$@", 0, 500));
            $report->(finished => sprintf('%.3f', time));
            POSIX::_exit(0);
        }
        close $c;
    }
    # Keep the port's owner alive until killed or timed out.
    sleep 1 while 1;
}

sub report_line {
    my ($wr, $conn, %kv) = @_;
    my $line = "conn=$conn";
    for my $k (sort keys %kv) {
        # A long value (binary `got`, encoded three to a byte) must not
        # push the keys after it past the end of the line.
        (my $v = substr($kv{$k} // '', 0, 1000))
            =~ s/([^\w.:\/+=-])/sprintf '%%%02X', ord $1/ge;
        $line .= " $k=$v";
    }
    # One write below PIPE_BUF: lines from several children never mix.
    syswrite $wr, substr($line, 0, 4000) . "\n";
}

# Read reports that have arrived, waiting up to $wait seconds for one.
sub drain {
    my ($self, $wait) = @_;
    return 0 if $self->{eof};
    my $sel = IO::Select->new($self->{rd});
    return 0 unless $sel->can_read($wait);
    my $n = sysread $self->{rd}, $self->{buf}, 65536, length $self->{buf};
    if (!$n) {
        $self->{eof} = 1;
        return 0;
    }
    while ($self->{buf} =~ s/^([^\n]*)\n//) {
        my %kv;
        for (split / /, $1) {
            my ($k, $v) = split /=/, $_, 2;
            $v =~ s/%([0-9A-F]{2})/chr hex $1/ge;
            $kv{$k} = $v;
        }
        my $conn = delete $kv{conn} or next;
        my $c = $self->{conns}->{$conn} //= {};
        @$c{keys %kv} = values %kv;
    }
    return 1;
}

# Connection $conn's report once it holds $key (undef on timeout).
sub wait_for {
    my ($self, $conn, $key, $wait) = @_;
    my $deadline = time + ($wait // 10);
    while (1) {
        my $c = $self->{conns}->{$conn};
        return $c if $c && exists $c->{$key};
        my $left = $deadline - time;
        return undef if $left <= 0 || $self->{eof};
        $self->drain($left);
    }
}

# Connection $conn's report so far (an empty hash if none).
sub conn {
    my ($self, $conn) = @_;
    1 while $self->drain(0);
    return $self->{conns}->{$conn} // {};
}

# How many connections have reported so far.
sub count {
    my $self = shift;
    1 while $self->drain(0);
    return scalar keys %{ $self->{conns} };
}

# Kill the origin's process group (what start() forked) and reap it.
sub stop {
    my $self = shift;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', -$pid or kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return if waitpid($pid, POSIX::WNOHANG()) != 0;
        sleep 0.05;
    }
    kill 'KILL', -$pid or kill 'KILL', $pid;
    waitpid $pid, 0;
}

sub DESTROY {
    local ($., $@, $!, $^E, $?);
    $_[0]->stop;
}

# --- helpers for the connection handlers ------------------------------

# The first bytes of a stream, for reports.
sub first_bytes { substr($_[0], 0, 256) }

# --- connection handlers ------------------------------------------------

sub h_echo {
    my ($c, $report, $opt) = @_;
    my ($bytes, $sha, $err) = (0, Digest::SHA->new(256), '');
    while (1) {
        my $n = sysread $c, my $buf, 65536;
        if (!defined $n) {
            next if $!{EINTR};
            $err = "$!";
            last;
        }
        last if $n == 0;
        $bytes += $n;
        $sha->add($buf);
        if (!write_all($c, $buf)) {
            $err = "$!";
            last;
        }
    }
    $report->(bytes => $bytes, sha256 => $sha->hexdigest,
              eof => $err ? 0 : 1, error => $err);
    close $c;
}

sub h_sink {
    my ($c, $report, $opt) = @_;
    my $expect = $opt->{expect};
    my ($bytes, $sha, $head, $eof, $err) = (0, Digest::SHA->new(256), '',
                                            0, '');
    if ($opt->{delay}) {
        sleep $opt->{delay};
        $report->(reading => sprintf('%.3f', time));
    }
    while (!defined $expect || $bytes < $expect) {
        my $n = sysread $c, my $buf, 65536;
        if (!defined $n) {
            next if $!{EINTR};
            $err = "$!";
            last;
        }
        if ($n == 0) {
            $eof = 1;
            last;
        }
        $head .= $buf if length $head < 256;
        $bytes += $n;
        $sha->add($buf);
    }
    my $digest = $sha->hexdigest;
    $report->(bytes => $bytes, sha256 => $digest, eof => $eof,
              error => $err, head => first_bytes($head),
              eof_at => sprintf('%.3f', time));
    return if $err;
    if ($opt->{reply} // 1) {
        sleep $opt->{reply_delay} if $opt->{reply_delay};
        my $ok = write_all($c, "SINK bytes=$bytes sha256=$digest\n");
        $report->(replied => $ok ? 1 : 0, reply_error => $ok ? '' : "$!");
    }
    if (!$eof) {
        # Anything beyond what was expected was sent twice or too much.
        my $extra = 0;
        while (1) {
            my $n = sysread $c, my $buf, 65536;
            next if !defined $n && $!{EINTR};
            last unless $n;
            $extra += $n;
        }
        $report->(extra => $extra);
    }
    close $c;
}

# Write a stream without blocking for long, reporting progress; returns
# the stream (done or not) and the error, if any.
sub send_stream {
    my ($c, $report, $opt) = @_;
    my $st = CT::Origin::Stream->new($opt->{bytes} // 0, $opt->{seed} // 1);
    my $chunk = $opt->{chunk};
    my $interval = $opt->{interval};
    $c->blocking(0);
    my $sel = IO::Select->new($c);
    my ($pending, $last_report, $err) = ('', 0, '');
    while (length $pending || !$st->done) {
        $pending = $st->next($chunk // 262144) unless length $pending;
        if (!$sel->can_write(0.2)) {
            # blocked: still report (not more than every 0.2 s)
        }
        else {
            my $n = syswrite $c, $pending;
            if (!defined $n) {
                if (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) {
                    $err = "$!";
                    last;
                }
            }
            else {
                substr($pending, 0, $n, '');
                $st->{sent} += $n;
                sleep $interval if $interval && !length $pending;
            }
        }
        if (time - $last_report >= 0.2) {
            $report->(sent => $st->{sent});
            $last_report = time;
        }
    }
    $c->blocking(1);
    return ($st, $err);
}

sub h_source {
    my ($c, $report, $opt) = @_;
    my ($st, $err) = send_stream($c, $report, $opt);
    $report->(sent => $st->{sent}, error => $err,
              $err ? () : (done => 1, sha256 => $st->sha256,
                           done_at => sprintf('%.3f', time)));
    close $c;
}

sub h_duplex {
    my ($c, $report, $opt) = @_;
    my $st = CT::Origin::Stream->new($opt->{bytes} // 0, $opt->{seed} // 1);
    my $expect = $opt->{expect} // 0;
    my ($got, $sha, $pending, $err, $eof) = (0, Digest::SHA->new(256), '',
                                             '', 0);
    $c->blocking(0);
    my $last_report = 0;
    while ((length $pending || !$st->done || $got < $expect) && !$err) {
        $pending = $st->next(262144) if !length $pending && !$st->done;
        my $r = IO::Select->new;
        $r->add($c) if $got < $expect && !$eof;
        my $w = IO::Select->new;
        $w->add($c) if length $pending;
        last if !$r->count && !$w->count;
        my ($cr, $cw) = IO::Select->select($r, $w, undef, 0.2);
        if ($cr && @$cr) {
            my $n = sysread $c, my $buf, 262144;
            if (defined $n && $n > 0) {
                $got += $n;
                $sha->add($buf);
                # What was expected is in: say so, whatever the other way.
                $report->(bytes => $got, sha256 => $sha->clone->hexdigest,
                          recv_done => 1) if $got >= $expect;
            }
            elsif (defined $n) {
                $eof = 1;
            }
            elsif (!$!{EAGAIN} && !$!{EINTR}) {
                $err = "read: $!";
            }
        }
        if ($cw && @$cw) {
            my $n = syswrite $c, $pending;
            if (defined $n) {
                substr($pending, 0, $n, '');
                $st->{sent} += $n;
                $report->(sent => $st->{sent}, sent_sha256 => $st->sha256,
                          send_done => 1)
                    if $st->done && !length $pending;
            }
            elsif (!$!{EAGAIN} && !$!{EINTR}) {
                $err = "write: $!";
            }
        }
        if (time - $last_report >= 0.5) {
            $report->(sent => $st->{sent}, bytes => $got);
            $last_report = time;
        }
    }
    $report->(sent => $st->{sent}, sent_sha256 => $st->sha256,
              bytes => $got, sha256 => $sha->hexdigest, eof => $eof,
              error => $err, done => 1);
    $c->blocking(1);
    close $c;
}

sub h_shut_first {
    my ($c, $report, $opt) = @_;
    my $greeting = $opt->{greeting} // "HELLO FROM ORIGIN\n";
    write_all($c, $greeting);
    shutdown $c, SHUT_WR;
    $report->(shut => 1, shut_at => sprintf('%.3f', time));
    my ($got, $bytes, $eof, $err) = ('', 0, 0, '');
    my $sha = Digest::SHA->new(256);
    while (1) {
        my $n = sysread $c, my $buf, 65536;
        if (!defined $n) {
            next if $!{EINTR};
            $err = "$!";
            last;
        }
        if ($n == 0) {
            $eof = 1;
            last;
        }
        $bytes += $n;
        $sha->add($buf);
        $got .= $buf if length $got < 4000;
    }
    $report->(got => substr($got, 0, 2000), bytes => $bytes, eof => $eof,
              sha256 => $sha->hexdigest, error => $err);
    close $c;
}

sub h_hold {
    my ($c, $report, $opt) = @_;
    my $t0 = time;
    my ($bytes, $err) = (0, '');
    while (1) {
        my $n = sysread $c, my $buf, 65536;
        if (!defined $n) {
            next if $!{EINTR};
            $err = "$!";
            last;
        }
        last if $n == 0;
        $bytes += $n;
    }
    $report->(bytes => $bytes, error => $err,
              eof_after => sprintf('%.3f', time - $t0));
    close $c;
}

############################################################################
# The recording origin: one forked process with listeners of three kinds.
#   echo: echoes every byte; at the client's end of stream it shuts down
#         its own write side once the echo is out, then closes.
#   bye:  echoes; at end of stream it answers "bye\n" and closes.
#   shut: says "hello\n" and shuts down its write side at once, then
#         only reads until end of stream.
# Each connection that ends leaves one line in the record file:
#   peer=PORT mode=KIND bytes=N sha256=HEX end=eof|error
# PORT is the proxy's source port of that connection.

sub start_origin {
    my %opt = @_;
    my $dir = File::Temp::tempdir('ct-origin-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    my $record = "$dir/record";
    open my $touch, '>', $record or die "$record: $!";
    close $touch;
    my %listen;
    for my $kind (qw(echo bye shut)) {
        $listen{$kind} = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1024,
            ReuseAddr => 1, Proto => 'tcp')
            or die "origin listen: $!";
    }
    my %ports = map { $_ => $listen{$_}->sockport } keys %listen;
    my $parent = $$;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        origin_main(\%listen, $record, $parent);
        POSIX::_exit(0);
    }
    close $_ for values %listen;
    return bless { pid => $pid, port => \%ports, record => $record,
                   dir => $dir }, 'CT::Origin::Recorder';
}

sub origin_main {
    my ($listen, $record, $parent) = @_;
    # Never run the test's END blocks in this process.
    $SIG{TERM} = $SIG{INT} = sub { POSIX::_exit(0) };
    $SIG{PIPE} = 'IGNORE';
    open my $rec, '>>', $record or POSIX::_exit(1);
    $rec->autoflush(1);
    my (%conn, %kind_of);
    for my $kind (keys %$listen) {
        nonblocking($listen->{$kind});
        $kind_of{fileno $listen->{$kind}} = $kind;
    }
    my $started = time;
    my $finish = sub {
        my ($c, $how) = @_;
        print $rec sprintf "peer=%d mode=%s bytes=%d sha256=%s end=%s\n",
            $c->{peer}, $c->{kind}, $c->{bytes}, $c->{sha}->hexdigest,
            $how;
        delete $conn{fileno $c->{sock}};
        close $c->{sock};
    };
    while (1) {
        # Bounded: gone with the test, and never older than 15 minutes.
        POSIX::_exit(0) if getppid() != $parent || time - $started > 900;
        my $poll = IO::Poll->new;
        $poll->mask($listen->{$_} => POLLIN) for keys %$listen;
        for my $c (values %conn) {
            my $m = 0;
            $m |= POLLIN if !$c->{eof} && length $c->{out} < (4 << 20);
            $m |= POLLOUT if length $c->{out};
            $poll->mask($c->{sock} => $m) if $m;
        }
        my $n = $poll->poll(1);
        next unless $n && $n > 0;
        for my $l (values %$listen) {
            next unless $poll->events($l);
            while (my $s = $l->accept) {
                nonblocking($s);
                my $kind = $kind_of{fileno $l};
                my $c = { sock => $s, kind => $kind, out => '',
                          bytes => 0, sha => Digest::SHA->new(256),
                          eof => 0, shut => 0, peer => $s->peerport };
                if ($kind eq 'shut') {
                    $c->{out} = "hello\n";
                    $c->{shut_after} = 1;
                }
                $conn{fileno $s} = $c;
            }
        }
        for my $c (values %conn) {
            my $s = $c->{sock};
            my $ev = $poll->events($s) or next;
            if ($ev & (POLLIN | POLLHUP | POLLERR) && !$c->{eof}) {
                my $r = sysread($s, my $buf, 65536);
                if (!defined $r) {
                    next if $! == EAGAIN || $! == EINTR;
                    $finish->($c, 'error');
                    next;
                }
                if ($r == 0) {
                    $c->{eof} = 1;
                    if ($c->{kind} eq 'echo') {
                        $c->{shut_after} = 1;
                    }
                    elsif ($c->{kind} eq 'bye') {
                        $c->{out} .= "bye\n";
                    }
                }
                else {
                    $c->{bytes} += $r;
                    $c->{sha}->add($buf);
                    $c->{out} .= $buf unless $c->{kind} eq 'shut';
                }
            }
            if (length $c->{out} && $ev & (POLLOUT | POLLERR | POLLHUP)) {
                my $w = syswrite($s, $c->{out});
                if (!defined $w) {
                    next if $! == EAGAIN || $! == EINTR;
                    $finish->($c, 'error');
                    next;
                }
                substr($c->{out}, 0, $w, '');
            }
            if (!length $c->{out}) {
                if ($c->{shut_after} && !$c->{shut}) {
                    shutdown($s, 1);
                    $c->{shut} = 1;
                }
                $finish->($c, 'eof') if $c->{eof};
            }
        }
    }
}

package CT::Origin::Recorder;
use Time::HiRes qw(sleep);

sub port { $_[0]->{port}->{ $_[1] // 'echo' } }

# Records of connections that ended, optionally only those of one kind.
sub records {
    my ($self, $kind) = @_;
    open my $fh, '<', $self->{record} or return ();
    my @r;
    while (my $line = <$fh>) {
        my %f = $line =~ /(\w+)=(\S+)/g;
        push @r, \%f if !$kind || $f{mode} eq $kind;
    }
    return @r;
}

sub stop {
    my $self = shift;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    for (1 .. 100) {
        last if waitpid($self->{pid}, POSIX::WNOHANG()) != 0;
        sleep 0.05;
    }
    if (kill 0, $self->{pid}) {
        kill 'KILL', $self->{pid};
        waitpid($self->{pid}, 0);
    }
    delete $self->{pid};
}

sub DESTROY { $_[0]->stop if $_[0]->{pid} && $$ != $_[0]->{pid} }

package CT::Origin;

############################################################################
# Plain listeners, for tests that accept and drive the origin's end
# themselves.

# A listening socket on a loopback address (default 127.0.0.1; a
# wildcard one only inside a private network namespace).  %o: port
# (default 0: any), backlog (default 16), take_all => 1 for a
# non-blocking listener with the largest backlog, which take_accepts()
# empties.
sub listener {
    my %o = @_;
    my $addr = $o{addr} // '127.0.0.1';
    my $l = IO::Socket::IP->new(
        LocalHost => $addr,
        LocalPort => $o{port} // 0,
        Listen    => $o{take_all} ? Socket::SOMAXCONN() : $o{backlog} // 16,
        ReuseAddr => 1,
        ($addr =~ /:/ ? (V6Only => 1) : ()),
    ) or die "listen on $addr:" . ($o{port} // 0) . ": $@";
    $l->blocking(0) if $o{take_all};
    return $l;
}

# A listener whose accept queue is full: listen(0) queues one connection,
# which we make ourselves, so the kernel drops further SYNs and a connect()
# to it hangs until the caller's timeout.  Returns (listener, port, the
# queued clients); keep them all alive for as long as it must stay full.
sub full_listener {
    socket(my $l, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($l, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
    listen($l, 0) or die "listen: $!";
    my ($port) = unpack_sockaddr_in(getsockname($l));
    my @queued;
    for (1 .. 2) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 1);
        push @queued, $c if $c;
    }
    return ($l, $port, \@queued);
}

# True when a connect to 127.0.0.1:port is refused (nothing listens).
sub connect_refused {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 2);
    return 0 if $s;
    return $!{ECONNREFUSED} ? 1 : 0;
}

# A port on 127.0.0.1 that refuses connections for as long as the
# returned socket lives: it is bound (so nobody else takes it) but does
# not listen.  Returns (socket, port).
sub closed_port {
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
    my ($port) = unpack_sockaddr_in(getsockname($s));
    return ($s, $port);
}

# Accept one connection within the wait; undef if none comes.
sub accept_within {
    my ($l, $wait) = @_;
    return undef unless IO::Select->new($l)->can_read($wait // 10);
    my $c = $l->accept or return undef;
    $c->autoflush(1);
    return $c;
}

# Accept every connection waiting on the listeners, waiting up to $wait
# seconds for the first; returns the accepted sockets.
# What a stand-in upstream proxy or origin reads of a request on $c: the
# head up to its blank line (each read waits 5 s at most); what came, if
# the head stays short.
sub read_request_head {
    my $c = shift;
    my $sel = IO::Select->new($c);
    my $buf = '';
    for (1 .. 100) {
        last if $buf =~ /\r\n\r\n/;
        last unless $sel->can_read(5);
        last unless sysread($c, $buf, 8192, length $buf);
    }
    return $buf;
}

sub take_accepts {
    my ($wait, @listeners) = @_;
    my $sel = IO::Select->new(@listeners);
    my $deadline = time + ($wait // 0);
    my @got;
    while (1) {
        my $left = $deadline - time;
        $left = 0 if $left < 0 || @got;
        my @ready = $sel->can_read($left);
        last unless @ready;
        my $n = 0;
        for my $l (@ready) {
            while (my $c = $l->accept) {
                $c->autoflush(1);
                push @got, $c;
                $n++;
            }
        }
        last unless $n;
    }
    return @got;
}

package CT::Origin::Stream;
# A deterministic byte stream of a given length: 64 KiB chunks, each an
# 8-byte sequence number and a slice of a 1 MiB pseudo-random block, so
# that a lost, repeated or reordered chunk changes the SHA-256.  The same
# (length, seed) always gives the same bytes, on either side of a tunnel.
use strict;
use warnings FATAL => 'all';
use Digest::SHA ();

use constant CHUNK => 65536;
use constant BLOCK => 1 << 20;

my %blocks;

sub new {
    my ($class, $total, $seed) = @_;
    $blocks{$seed} //= do {
        # A small LCG, not rand(): the same bytes in every perl.
        my $x = $seed & 0xffffffff;
        pack 'N*', map { $x = ($x * 1103515245 + 12345) & 0xffffffff;
                         $x } 1 .. BLOCK / 4;
    };
    return bless { total => $total, seed => $seed, pos => 0, sent => 0,
                   sha => Digest::SHA->new(256) }, $class;
}

sub done { $_[0]->{pos} >= $_[0]->{total} }

# The next (up to) $max bytes of the stream, '' at its end.
sub next {
    my ($self, $max) = @_;
    my $out = '';
    while (length $out < $max && !$self->done) {
        my $i = int($self->{pos} / CHUNK);
        my $off = $self->{pos} % CHUNK;
        my $chunk = pack('Q>', $i)
                  . substr($blocks{ $self->{seed} },
                           ($i * 7919 * 8) % (BLOCK - CHUNK), CHUNK - 8);
        my $take = CHUNK - $off;
        $take = $max - length $out if $take > $max - length $out;
        $take = $self->{total} - $self->{pos}
            if $take > $self->{total} - $self->{pos};
        $out .= substr($chunk, $off, $take);
        $self->{pos} += $take;
    }
    $self->{sha}->add($out);
    return $out;
}

# The SHA-256 (hex) of everything next() returned so far.
sub sha256 {
    my $self = shift;
    return $self->{sha}->clone->hexdigest;
}

# The SHA-256 (hex) of the whole stream, computed without keeping it.
sub digest_of {
    my ($class, $total, $seed) = @_;
    my $st = $class->new($total, $seed);
    $st->next(1 << 20) until $st->done;
    return $st->sha256;
}

1;
