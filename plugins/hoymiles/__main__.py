import sys

from telegraf_bridge.plugins.hoymiles.plugin import main

sys.exit(main())
