import sys

from telegraf_bridge.plugins.demo.plugin import main

sys.exit(main())
