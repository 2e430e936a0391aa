#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""meson install step: copies the built console (index.html, assets/ and their .gz/.br
siblings) from the build folder to DATADIR/cloudbroker/console under the install prefix."""
import os
import shutil
import sys

src, rel = sys.argv[1], sys.argv[2]
prefix = os.environ.get('MESON_INSTALL_DESTDIR_PREFIX') or os.environ['MESON_INSTALL_PREFIX']
dst = os.path.join(prefix, rel)
if os.path.isdir(dst):
    shutil.rmtree(dst)
os.makedirs(dst)
for name in os.listdir(src):
    if name.startswith('index.html'):
        shutil.copy2(os.path.join(src, name), dst)
shutil.copytree(os.path.join(src, 'assets'), os.path.join(dst, 'assets'))
print(f'installed the console to {dst}')
