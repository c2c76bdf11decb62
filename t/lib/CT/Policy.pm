package CT::Policy;
# Helpers for the policy tests in t/policy/: marks in the error log, local
# listeners that stand in for origins and upstream proxies, ports that are
# certain to refuse, and the values policy.conf.in defined.  Every wait is
# bounded; every socket is on loopback.
use strict;
use warnings;
use Exporter 'import';
use IO::Socket::INET;
use IO::Select;
use Socket qw(PF_INET SOCK_STREAM pack_sockaddr_in unpack_sockaddr_in
              inet_aton);
use Time::HiRes qw(time sleep);
use Apache::Test ();
use Apache::TestUtil qw(t_cmp);
use CT::Raw qw(vhost_port);

our @EXPORT_OK = qw(t_path log_mark log_since log_wait conf_define
                    listener full_listener accept_within closed_port
                    send_raw read_to_eof count_responses status_of
                    head_of header_of connect_refused relays yes);

# Seconds any single wait may take.
our $WAIT = 10;

# For ok(): a boolean check with a description (Test.pm's two-argument
# ok() would compare the value with the description).
sub yes {
    my ($cond, $desc) = @_;
    return t_cmp($cond ? 'yes' : 'no', 'yes', $desc);
}

sub t_path {
    return join '/', Apache::Test::vars('t_dir'), @_;
}

sub error_log { t_path('logs', 'error_log') }

# The error log's current size: lines written later are "since" the mark.
sub log_mark {
    return -s error_log() || 0;
}

# The error log text written since the mark.
sub log_since {
    my $mark = shift;
    open my $fh, '<', error_log() or return '';
    seek $fh, $mark, 0;
    local $/;
    my $text = <$fh>;
    return $text // '';
}

# Wait until the text since the mark matches $re; the text, or undef.
sub log_wait {
    my ($mark, $re, $wait) = @_;
    my $deadline = time + ($wait // 5);
    while (1) {
        my $text = log_since($mark);
        return $text if $text =~ $re;
        return undef if time >= $deadline;
        sleep 0.05;
    }
}

# A port policy.conf.in reserved with "Define NAME @NextAvailablePort@".
sub conf_define {
    my $name = shift;
    my $file = t_path('conf', 'policy.conf');
    open my $fh, '<', $file or die "open $file: $!";
    while (<$fh>) {
        return $1 if /^\s*Define\s+\Q$name\E\s+(\S+)/;
    }
    die "no 'Define $name' in $file";
}

# A listening socket on loopback, port 0 (any) unless given.
sub listener {
    my %o = @_;
    my $l = IO::Socket::INET->new(LocalAddr => $o{addr} // '127.0.0.1',
                                  LocalPort => $o{port} // 0,
                                  Listen    => $o{backlog} // 16,
                                  ReuseAddr => 1)
        or die "listen on " . ($o{addr} // '127.0.0.1') . ":"
             . ($o{port} // 0) . ": $!";
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
    return undef unless IO::Select->new($l)->can_read($wait // $WAIT);
    my $c = $l->accept or return undef;
    $c->autoflush(1);
    return $c;
}

# True when bytes written on the client side of a tunnel arrive, the
# same, at the accepted connection and the reply comes back: the tunnel
# really carries data, beyond the status line.
sub relays {
    my ($client, $peer) = @_;
    return 0 unless $client && $peer;
    my $ping = "ping-" . int(rand(1e9)) . "\n";
    print $client $ping;
    my ($got) = read_exactly($peer, length $ping);
    return 0 unless defined $got && $got eq $ping;
    print $peer "pong\n";
    my ($back) = read_exactly($client, 5);
    return defined $back && $back eq "pong\n";
}

# Exactly $n bytes from $s within the wait; undef on a short read.
sub read_exactly {
    my ($s, $n) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + $WAIT;
    my $buf = '';
    while (length $buf < $n) {
        my $left = $deadline - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $got = sysread($s, $buf, $n - length $buf, length $buf);
        return undef unless $got;
    }
    return $buf;
}

# Connect to a virtual host of the test server and write raw bytes.
sub send_raw {
    my ($vhost, $bytes) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => vhost_port($vhost),
                                  Timeout  => $WAIT)
        or die "connect to $vhost: $!";
    $s->autoflush(1);
    print $s $bytes;
    return $s;
}

# Everything the peer sends until it closes; (bytes, closed?).
sub read_to_eof {
    my ($s, $wait) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    while (1) {
        my $left = $deadline - time;
        return ($buf, 0) if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        return ($buf, 1) unless $n;
    }
}

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

1;
