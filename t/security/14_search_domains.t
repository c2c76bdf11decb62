# The name the rules check is the name resolved.  With "search
# corp.example" in resolv.conf, a resolver given "wiki" would ask for
# wiki.corp.example, so "ConnectTunnelDeny *.corp.example" could be
# stepped around by CONNECT wiki:443, ProxyBlock likewise, and an allowed
# name whose own lookup fails ("options ndots:1" tries db.internal as is
# first) would fall back to db.internal.corp.example, wherever that
# points.  The module resolves a target's name as an absolute name, so
# none of these lookups ever happens.  Names the hosts file lists are
# still answered from it.
#
# An allow rule by name no longer switches the guard off for whatever the
# name resolves to: a name allowed by name that resolves to loopback is
# refused (CT00121) unless ConnectTunnelTrustAllowedNames On says to
# trust it.
#
# The file runs in network and mount namespaces of its own: only loopback
# exists, /etc/resolv.conf points at a small DNS responder this file runs
# on 127.0.0.1:53 (A records from a table, NXDOMAIN for other names), and
# the responder writes down every name it is asked, so the test can say
# which names were looked up.  Nothing leaves the machine.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Select;
use IO::Socket::IP;
use POSIX qw(_exit);
use Time::HiRes qw(time sleep);
use CT::Server qw(free_port in_netns);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(ps_error relays tunnel_via);
use CT::Logs qw(log_mark log_since log_wait no_crash);

# The last line has no newline: it counts all the same.
my $HOSTS = "127.0.0.1 localhost\n127.0.0.1 files-only";

my $RESOLV = <<'EOF';
nameserver 127.0.0.1
search corp.example
options ndots:1 timeout:1 attempts:1
EOF

if (my $why = in_netns(hosts => $HOSTS, 'resolv.conf' => $RESOLV)) {
    plan tests => 1, skip_reason("cannot build a network namespace: $why");
    exit 0;
}

# What the responder answers (A records); everything else is NXDOMAIN.
my %ZONE = (
    'wiki.corp.example'        => '127.0.0.1',
    'db.internal.corp.example' => '127.0.0.1',
    'app.corp.example'         => '127.0.0.1',
);

# The DNS responder, in a child of this test: one UDP socket, one answer
# per question, every name asked appended to $qlog.  It ends by itself
# after a bounded time if this test dies without stopping it.
my $qlog = CT::Server::scratch_dir() . '/queries';
my $dns_pid = start_responder($qlog);

sub dns_name {
    my ($pkt, $off) = @_;
    my @labels;
    while ($off < length $pkt) {
        my $len = ord substr($pkt, $off, 1);
        $off++;
        last if $len == 0;
        return if $len > 63;
        push @labels, substr($pkt, $off, $len);
        $off += $len;
    }
    return (join('.', @labels), $off);
}

sub dns_answer {
    my ($q, $log) = @_;
    return if length $q < 17;
    my ($id, $flags, $qd) = unpack 'n n n', $q;
    return if $flags & 0x8000 || $qd != 1;
    my ($name, $end) = dns_name($q, 12);
    return unless defined $name && $end + 4 <= length $q;
    my ($type) = unpack 'n', substr($q, $end, 2);
    print $log lc($name), " $type\n";
    my $addr = $ZONE{lc $name};
    my $rcode = defined $addr ? 0 : 3;
    my $an = defined $addr && $type == 1 ? 1 : 0;
    my $head = pack 'n n n n n n', $id, 0x8400 | ($flags & 0x0100) | $rcode,
                    1, $an, 0, 0;
    my $r = $head . substr($q, 12, $end + 4 - 12);
    $r .= pack('n n n N n', 0xc00c, 1, 1, 5, 4)
          . pack('C4', split /\./, $addr) if $an;
    return $r;
}

sub start_responder {
    my $file = shift;
    my $sock = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 53,
                                   Proto => 'udp')
        or die "dns responder: $@";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $log, '>>', $file or _exit(1);
        $log->autoflush(1);
        my $deadline = time + 300;
        my $sel = IO::Select->new($sock);
        while (time < $deadline) {
            next unless $sel->can_read(1);
            my $peer = $sock->recv(my $q, 512) or next;
            my $r = dns_answer($q, $log);
            $sock->send($r, 0, $peer) if defined $r;
        }
        _exit(0);
    }
    close $sock;
    return $pid;
}

sub stop_responder {
    return unless $dns_pid;
    kill 'TERM', $dns_pid;
    waitpid $dns_pid, 0;
    $dns_pid = 0;
}

END { stop_responder() }

# Every name the responder was asked, lower case.
sub asked {
    open my $fh, '<', $qlog or return {};
    my %seen;
    while (<$fh>) {
        $seen{$1} = 1 if /^(\S+) \d+$/;
    }
    return \%seen;
}

my $TP = free_port();
my %port = map { $_ => free_port() } qw(deny block fallback guard trust open);

# [port, target, expected status, error type, what it shows, optional
#  log line]
my @cases = (
    [ deny => "wiki.corp.example:$TP", 403, 'destination_ip_prohibited',
      'the deny rule refuses the full name' ],
    [ deny => "wiki:$TP", 502, 'dns_error',
      'a short name is looked up as is, not below the search domain '
      . 'the rule denies',
      qr/CT00028: dns lookup of 'wiki' failed/ ],
    [ block => "wiki:$TP", 502, 'dns_error',
      'ProxyBlock by domain cannot be stepped around either' ],
    [ fallback => "db.internal:$TP", 502, 'dns_error',
      'an allowed (and trusted) name whose lookup fails does not fall '
      . 'back to a search-domain name' ],
    [ guard => "app.corp.example:$TP", 403, 'destination_ip_prohibited',
      'an allowed name that resolves to loopback is refused by the guard',
      qr/CT00121: tunnel to 'app\.corp\.example' refused: a rule allows the name, but every address it resolves to is denied by the default guard \(loopback\)/ ],
    [ trust => "app.corp.example:$TP", 200, '',
      'with ConnectTunnelTrustAllowedNames On it connects' ],
    [ open => "app.corp.example:$TP", 200, '',
      'a full name resolves through the responder' ],
    [ open => "files-only:$TP", 200, '',
      'a name the hosts file lists is still answered from it' ],
);

plan tests => @cases + 4;

# ConnectTunnelTrustAllowedNames sits in <IfDirective> where the test
# wants it On, so that the same file runs against a module without it.
my $srv = CT::Server->start(port => $port{deny}, relay => 1, threads => 16,
                            config => <<"EOF");
Listen 127.0.0.1:$port{deny}
Listen 127.0.0.1:$port{block}
Listen 127.0.0.1:$port{fallback}
Listen 127.0.0.1:$port{guard}
Listen 127.0.0.1:$port{trust}
Listen 127.0.0.1:$port{open}
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
<VirtualHost 127.0.0.1:$port{deny}>
    ConnectTunnelDeny *.corp.example
    ConnectTunnelAllow loopback
</VirtualHost>
<VirtualHost 127.0.0.1:$port{block}>
    ProxyBlock corp.example
    ConnectTunnelAllow loopback
</VirtualHost>
<VirtualHost 127.0.0.1:$port{fallback}>
    ConnectTunnelAllow db.internal
    <IfDirective ConnectTunnelTrustAllowedNames>
        ConnectTunnelTrustAllowedNames On
    </IfDirective>
</VirtualHost>
<VirtualHost 127.0.0.1:$port{guard}>
    ConnectTunnelAllow app.corp.example
</VirtualHost>
<VirtualHost 127.0.0.1:$port{trust}>
    ConnectTunnelAllow app.corp.example
    <IfDirective ConnectTunnelTrustAllowedNames>
        ConnectTunnelTrustAllowedNames On
    </IfDirective>
</VirtualHost>
<VirtualHost 127.0.0.1:$port{open}>
    ConnectTunnelAllow loopback
</VirtualHost>
EOF
my $start = log_mark($srv->{error_log});

# Every address this namespace has, at the origin port: a refused tunnel
# must reach none of them.
my @trap = (listener(addr => '0.0.0.0', take_all => 1, port => $TP),
            listener(addr => '::', take_all => 1, port => $TP));

for my $c (@cases) {
    my ($which, $target, $want, $type, $what, $log) = @$c;
    my $mark = log_mark($srv->{error_log});
    my ($s, $status, $h) = tunnel_via($port{$which}, $target);
    my @got = take_accepts($want == 200 ? 5 : 1, @trap);
    my $ok;
    if ($want == 200) {
        $ok = $status == 200 && @got == 1 && relays($s, $got[0], $which);
    }
    else {
        $ok = $status == $want && ps_error($h) eq $type && !@got;
    }
    $ok &&= log_wait($mark, $log, 5, line => 1, log => $srv->{error_log},
                     default => '') ne '' if $log;
    ok $ok or t_debug("$which $target ($what): expected $want '$type', "
                      . "got $status '" . ps_error($h) . "', "
                      . scalar(@got) . " connection(s)"
                      . ($log ? "; log wanted $log" : ''));
    close $_ for $s, @got;
}

# Which names the resolver asked for: the names as sent, never a
# search-domain name made from them, and nothing for a hosts file name.
my $asked = asked();
ok $asked->{wiki} && $asked->{'db.internal'} && $asked->{'app.corp.example'}
   or t_debug('names asked: ' . join(' ', sort keys %$asked));
ok !$asked->{'wiki.corp.example'}
   or t_debug('wiki.corp.example was looked up');
ok !$asked->{'db.internal.corp.example'}
   && !$asked->{'files-only'} && !$asked->{'files-only.corp.example'}
   or t_debug('names asked: ' . join(' ', sort keys %$asked));

ok no_crash($start, $srv->{error_log})
   && $srv->stop;
stop_responder();
