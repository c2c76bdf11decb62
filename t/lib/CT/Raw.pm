package CT::Raw;
# Raw-socket access to the test server's proxy virtual hosts: send exactly
# the bytes a test wants and read the reply head, with every wait bounded.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);
use Apache::Test ();

our @EXPORT_OK = qw(vhost_port proxy_socket read_head raw_connect
                    read_bytes wait_closed);

# Seconds any single wait may take before a test gives up.
our $WAIT = 10;

# The port Apache::Test gave to <VirtualHost NAME>.
sub vhost_port {
    my $name = shift;
    my $vh = Apache::Test::config()->{vhosts}->{$name}
        or die "no virtual host '$name' in the test configuration";
    return $vh->{port};
}

# A connected socket to the named proxy virtual host.
sub proxy_socket {
    my $name = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => vhost_port($name),
                                  Timeout  => $WAIT)
        or die "connect to $name: $!";
    $s->autoflush(1);
    return $s;
}

# Read until "\r\n\r\n"; returns (status, {lower-case header => value},
# head text, bytes read past the head) or an empty list on close/timeout.
sub read_head {
    my ($s, $wait) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $left = $deadline - time;
        return () if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
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

# Send a CONNECT (plus any extra request text) and read the reply head.
sub raw_connect {
    my ($vhost, $target, %opt) = @_;
    my $s = proxy_socket($vhost);
    my $req = "CONNECT $target HTTP/1.1\r\n"
            . "Host: " . ($opt{host} // $target) . "\r\n"
            . ($opt{headers} // '') . "\r\n" . ($opt{after} // '');
    print $s $req;
    my @r = read_head($s, $opt{wait});
    return ($s, @r);
}

# Read exactly $len bytes (fewer on close or timeout).
sub read_bytes {
    my ($s, $len, $wait) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    while (length $buf < $len) {
        my $left = $deadline - time;
        last if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, $len - length $buf, length $buf);
        last unless $n;
    }
    return $buf;
}

# True when the peer closes (EOF or reset) within the wait; data that
# arrives first is discarded and returned through $$seen.
sub wait_closed {
    my ($s, $wait, $seen) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + ($wait // $WAIT);
    my $buf = '';
    while (1) {
        my $left = $deadline - time;
        return 0 if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!$n) {
            $$seen = $buf if $seen;
            return 1;
        }
    }
}

1;
