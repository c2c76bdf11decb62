package CT::DNS;
# A loopback DNS responder that writes down every question it gets, for
# tests that must show which names a server looked up (or did not).  It
# answers A and AAAA from a small table and NXDOMAIN for anything else,
# over UDP on 127.0.0.1:53, so it only makes sense inside a private
# network and mount namespace whose resolv.conf names 127.0.0.1 (see
# CT::Server::in_netns, option resolv).  It runs in a child process, stopped
# by its own PID; every wait is bounded.
use strict;
use warnings;
use IO::Socket::IP;
use POSIX qw(WNOHANG);
use Socket qw(inet_pton AF_INET AF_INET6);
use Time::HiRes qw(time sleep);

our $WAIT = 10;

# The resolv.conf text that sends every lookup here, one try each.
sub resolv_conf { "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n" }

# Start the responder: records => { name => [addresses] }, log => file.
sub start {
    my ($class, %o) = @_;
    my $log = $o{log} or die "CT::DNS->start needs log => FILE";
    open my $fh, '>', $log or die "write $log: $!";
    close $fh;
    my $sock = IO::Socket::IP->new(LocalHost => '127.0.0.1',
                                   LocalPort => 53, Proto => 'udp')
        or die "bind 127.0.0.1:53/udp: $@";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        serve($sock, $log, $o{records} || {});
        POSIX::_exit(0);
    }
    close $sock;
    return bless { pid => $pid, log => $log }, $class;
}

# Read one name from a message at $off; returns (name, next offset).
sub read_name {
    my ($msg, $off) = @_;
    my @labels;
    for (1 .. 128) {
        return (undef, $off) if $off >= length $msg;
        my $len = ord substr($msg, $off++, 1);
        return (join('.', @labels), $off) if $len == 0;
        return (undef, $off) if $len > 63;   # no compression in questions
        push @labels, lc substr($msg, $off, $len);
        $off += $len;
    }
    return (undef, $off);
}

sub answer {
    my ($query, $qend, $name, $type, $records) = @_;
    my ($id) = unpack 'n', $query;
    my $question = substr($query, 12, $qend - 12);
    my @rr;
    for my $addr (@{ $records->{$name} || [] }) {
        my $v6 = $addr =~ /:/;
        next unless $type == ($v6 ? 28 : 1);
        my $raw = inet_pton($v6 ? AF_INET6 : AF_INET, $addr);
        push @rr, pack('n n n N n', 0xc00c, $type, 1, 5, length $raw) . $raw;
    }
    my $rcode = exists $records->{$name} ? 0 : 3;
    return pack('n n n n n n', $id, 0x8180 | $rcode, 1, scalar @rr, 0, 0)
           . $question . join('', @rr);
}

sub serve {
    my ($sock, $log, $records) = @_;
    $SIG{TERM} = sub { POSIX::_exit(0) };
    open my $fh, '>>', $log or POSIX::_exit(1);
    $fh->autoflush(1);
    while (1) {
        my $peer = $sock->recv(my $msg, 1500, 0);
        next unless defined $peer && length $msg > 12;
        my ($name, $off) = read_name($msg, 12);
        next unless defined $name && $off + 4 <= length $msg;
        my ($type) = unpack 'n', substr($msg, $off, 2);
        print $fh "$name $type\n";
        $sock->send(answer($msg, $off + 4, $name, $type, $records), 0,
                    $peer);
    }
}

# Every question so far, as [name, type] pairs.
sub queries {
    my $self = shift;
    open my $fh, '<', $self->{log} or return ();
    return map { chomp; [split ' '] } <$fh>;
}

# How many questions named $name (or matched a regexp).
sub count {
    my ($self, $name) = @_;
    my $re = ref $name ? $name : qr/^\Q$name\E$/i;
    return scalar grep { $_->[0] =~ $re } $self->queries;
}

sub stop {
    my $self = shift;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', $pid;
    my $deadline = time + $WAIT;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY {
    my $self = shift;
    local ($?, $!, $@);
    $self->stop;
}

1;
