/*  bus_ledger_private.h — the ledger's limits, shared with its selftest
    (bus_ledger_test.c) so the test can step the clock across the refusal
    window and fill the refusal table without copying the numbers.  Not
    part of the public API: it lives next to the sources, not in
    include/.  */

#ifndef BUS_LEDGER_PRIVATE_H_INCLUDED
#define BUS_LEDGER_PRIVATE_H_INCLUDED

//  How long a refusal stands for its request, and how many are kept
#define BUS_LEDGER_REFUSED_MS  60000
#define BUS_LEDGER_REFUSED_MAX 10000

#endif
