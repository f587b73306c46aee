# expect: importing the agent file called exit(1)
import plait
from _tools import done, up


import sys

sys.exit(1)
