# Twenty typical rules (benches/plugins.sh, plugins/sieve/examples/bench.rs):
# lists by List-Id, senders, subjects, spam, size, a regex, a body test.
require ["fileinto", "imap4flags", "variables", "regex", "spamtest", "relational", "comparator-i;ascii-numeric", "body"];
if header :contains "list-id" "list0.example.org" { fileinto "Lists/l0"; stop; }
if header :contains "list-id" "list1.example.org" { fileinto "Lists/l1"; stop; }
if header :contains "list-id" "list2.example.org" { fileinto "Lists/l2"; stop; }
if header :contains "list-id" "list3.example.org" { fileinto "Lists/l3"; stop; }
if header :contains "list-id" "list4.example.org" { fileinto "Lists/l4"; stop; }
if header :contains "list-id" "list5.example.org" { fileinto "Lists/l5"; stop; }
if header :contains "list-id" "list6.example.org" { fileinto "Lists/l6"; stop; }
if header :contains "list-id" "list7.example.org" { fileinto "Lists/l7"; stop; }
if header :contains "list-id" "list8.example.org" { fileinto "Lists/l8"; stop; }
if header :contains "list-id" "list9.example.org" { fileinto "Lists/l9"; stop; }
if header :contains "list-id" "list10.example.org" { fileinto "Lists/l10"; stop; }
if header :contains "list-id" "list11.example.org" { fileinto "Lists/l11"; stop; }
if header :contains "list-id" "list12.example.org" { fileinto "Lists/l12"; stop; }
if header :contains "list-id" "list13.example.org" { fileinto "Lists/l13"; stop; }
if address :domain :is "from" ["spam.example", "junk.example"] { discard; stop; }
if header :matches "subject" "*[SPAM]*" { fileinto "Junk"; stop; }
if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto :flags "$Junk" "Junk"; stop; }
if size :over 5M { addflag "$Big"; }
if header :regex "subject" "^invoice [0-9]+$" { fileinto "Invoices"; }
if body :contains "unsubscribe" { addflag "$Newsletter"; }
