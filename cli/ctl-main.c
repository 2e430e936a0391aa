/* SPDX-License-Identifier: Apache-2.0 */
/* cloudbrokerctl: the broker's API from a terminal. Everything is in the ctl library. */
#include "ctl-commands.h"

int main(int argc, char **argv)
{
    return ctl_run(argc, argv);
}
