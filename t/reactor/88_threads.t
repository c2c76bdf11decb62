# ConnectTunnelReactorThreads sets how many reactor threads each child
# runs; 0 runs none and keeps every tunnel in its worker even with the
# hand-off on.  Standalone httpds with one child each:
#   0 threads: a tunnel works and is relayed in its worker (mode=worker).
#   4 threads: before any tunnel, the child has exactly 5 threads more
#     than with 0 (the 4 reactors and the one that takes tunnels exiting
#     children move; the access-log writer starts with the first tunnel
#     handed off); 40
#     tunnels are all handed off, all echo at once, and end cleanly with
#     records mode=reactor.
# Only the default run hands tunnels off; the worker runs skip this.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(SHUT_WR);
use CT::Server qw(children_of suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_to_eof tunnel);
use CT::Logs qw(access_lines tunnel_records);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay)'
    if suite_mode() ne 'reactor';
plan tests => 7;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

sub server {
    my $threads = shift;
    return CT::Server->start(conf => <<"EOC");
StartServers 1
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
MinSpareThreads 5
MaxSpareThreads 25
ConnectTunnelReactorThreads $threads
EOC
}

# Threads of the server's only child, once it has started them all.
sub child_threads {
    my $httpd = shift;
    my $n;
    wait_until(sub {
        my ($kid) = children_of($httpd->pid) or return 0;
        open my $fh, '<', "/proc/$kid/status" or return 0;
        my ($t) = map { /^Threads:\s+(\d+)/ ? $1 : () } <$fh>;
        my $same = defined $n && defined $t && $t == $n;
        $n = $t;
        return $same;
    }, 5);
    return $n // 0;
}

sub end_all {
    my $ended = 0;
    for my $s (@_) {
        shutdown($s, SHUT_WR);
        my (undef, $eof) = read_to_eof($s, 5);
        $ended++ if $eof;
        close $s;
    }
    return $ended;
}

my $base;
{
    my $httpd = server(0);
    $base = child_threads($httpd);
    my ($s, $status) = tunnel($httpd->port, $target);
    ok $status && $status == 200 && echo_ok($s, "zero\n"),
       '0 reactor threads: a tunnel works';
    my $cport = $s->sockport;
    end_all($s);
    my $line = wait_until(sub {
        (access_lines($cport, $httpd->file('access_log')))[0];
    });
    is $line && $line->{mode}, 'worker',
       '0 reactor threads: it was relayed in its worker';
    $httpd->stop;
}

{
    my $httpd = server(4);
    my $n = child_threads($httpd);
    is $n - $base, 5, "4 reactor threads: the child runs 4 more threads "
                      . "and the receiver of moved tunnels ($n, against "
                      . "$base)";
    my @s;
    for my $i (1 .. 40) {
        my ($s, $status) = tunnel($httpd->port, $target);
        push @s, $s if ($status // 0) == 200;
    }
    is scalar @s, 40, '4 reactor threads: 40 tunnels established';
    my $i = 0;
    ok !grep({ !echo_ok($_, 'tunnel ' . ++$i . "\n") } @s),
       '4 reactor threads: all 40 echo';
    is end_all(@s), 40, '4 reactor threads: all end cleanly';
    my $recs = wait_until(sub {
        my @r = tunnel_records($target, $httpd->file('tunnels_log'));
        @r >= 40 ? \@r : undef;
    });
    is scalar(grep { $_->{mode} eq 'reactor' && $_->{end} eq 'closed' }
              @{ $recs // [] }), 40,
       '4 reactor threads: 40 records mode=reactor end=closed';
    $httpd->stop;
}

$origin->stop;
