# No child of the test server crashed while the tests above ran: a crash
# is often invisible to the test that caused it (the client just sees a
# closed connection), but the parent logs every child that died of a
# signal.  This scans the whole error log, so it covers every test file
# that ran before it (Apache::Test runs the files in path order).
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(t_path);

my @patterns = (
    [ qr/\bAH00052:/,                 'AH00052 (child exited on a signal)' ],
    [ qr/\bchild pid \d+ exit signal/, 'child pid ... exit signal' ],
    [ qr/\bexit signal\b/,            'exit signal' ],
    [ qr/Segmentation fault/,         'Segmentation fault' ],
    [ qr/\bAH00060:/,                 'AH00060 (seg fault or similar '
                                      . 'nasty error in the parent)' ],
);

plan tests => scalar @patterns;

my $log = t_path('logs', 'error_log');
my %hits;
if (open my $fh, '<', $log) {
    while (my $line = <$fh>) {
        for my $p (@patterns) {
            push @{ $hits{$p->[1]} }, $line if $line =~ $p->[0];
        }
    }
}
else {
    die "open $log: $!";
}

for my $p (@patterns) {
    my @lines = @{ $hits{$p->[1]} || [] };
    splice @lines, 5 if @lines > 5;
    ok t_cmp(join('', @lines), '', "no '$p->[1]' in the error log");
}
