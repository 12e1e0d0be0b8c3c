"""The demo roster's tables: staffing roles with their skills, certifications and pay, real US
cities with area codes and ZIP codes, state names and pay levels, availability, email domains,
first and last names (SPEC §4 "Demo data"). Data only; :mod:`lakehouse_common.ops.roster`
generates workers from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --- certifications -----------------------------------------------------------------------

OSHA_10 = "OSHA-10"
OSHA_30 = "OSHA-30"
FORKLIFT = "Forklift Certification"
REACH_TRUCK = "Reach Truck Certification"
ORDER_PICKER = "Order Picker Certification"
FLAGGER = "Flagger Certification"
CPR_BLS = "CPR/BLS"
FIRST_AID = "First Aid"
BLOODBORNE = "Bloodborne Pathogens"
CNA_LICENSE = "CNA License"
HHA_CERT = "Home Health Aide Certification"
CMA = "Certified Medical Assistant (CMA)"
RMA = "Registered Medical Assistant (RMA)"
CPT = "Certified Phlebotomy Technician (CPT)"
RDA = "Registered Dental Assistant (RDA)"
DENTAL_XRAY = "Dental Radiography Certification"
CDL_A = "CDL-A"
CDL_B = "CDL-B"
HAZMAT = "Hazmat Endorsement"
TANKER = "Tanker Endorsement"
DOT_MEDICAL = "DOT Medical Card"
TWIC = "TWIC Card"
ELECTRICIAN_LICENSE = "Journeyman Electrician License"
PLUMBER_LICENSE = "Journeyman Plumber License"
BACKFLOW = "Backflow Prevention Certification"
NFPA_70E = "NFPA 70E Arc Flash Safety"
EPA_608 = "EPA 608 Certification"
NATE = "NATE Certification"
EPA_RRP = "EPA Lead-Safe (RRP)"
NCCER = "NCCER Core"
AWS_WELDER = "AWS Certified Welder"
NIMS = "NIMS Machining Level I"
IPC_610 = "IPC-A-610"
IPC_J_STD = "IPC J-STD-001"
CQI = "ASQ Certified Quality Inspector (CQI)"
SIX_SIGMA_YELLOW = "Six Sigma Yellow Belt"
SERVSAFE = "ServSafe Food Handler"
SERVSAFE_MANAGER = "ServSafe Manager"
GUARD_LICENSE = "Security Guard License"
MOS = "Microsoft Office Specialist"
CAP = "Certified Administrative Professional (CAP)"


@dataclass(frozen=True)
class Role:
    """A staffing role: how common it is, what it pays, and what its workers bring.

    ``skills`` are ordered core-first: earlier skills are picked more often. Each entry of
    ``certifications`` is (name, probability that a worker in this role holds it), drawn
    independently, so a worker's certifications are always a subset of the role's list.
    """

    name: str
    weight: float  # relative share of the roster
    base_rate: float  # USD/hour for an entry-level worker at the national pay level
    years_scale: float  # gamma scale of years of experience (mean = 2 × scale)
    skills: tuple[str, ...]
    certifications: tuple[tuple[str, float], ...]


ROLES: Final[tuple[Role, ...]] = (
    Role(
        "Forklift Operator",
        10.0,
        19.50,
        3.0,
        (
            "Sit-down forklift",
            "Stand-up reach truck",
            "Pallet jack",
            "RF scanning",
            "Loading and unloading",
            "Inventory control",
            "Order picker",
            "Shipping and receiving",
            "Cycle counting",
            "Pallet wrapping",
        ),
        ((FORKLIFT, 0.85), (OSHA_10, 0.35), (REACH_TRUCK, 0.25), (ORDER_PICKER, 0.15)),
    ),
    Role(
        "Warehouse Associate",
        12.0,
        17.50,
        2.5,
        (
            "RF scanning",
            "Picking and packing",
            "Pallet jack",
            "Loading and unloading",
            "Shipping and receiving",
            "Inventory control",
            "Order fulfillment",
            "Cycle counting",
            "Labeling",
            "WMS software",
        ),
        ((OSHA_10, 0.20), (FORKLIFT, 0.20), (FIRST_AID, 0.05)),
    ),
    Role(
        "Picker/Packer",
        8.0,
        16.50,
        2.0,
        (
            "Order picking",
            "Packing",
            "RF scanning",
            "Labeling",
            "Order fulfillment",
            "Quality checks",
            "Pallet building",
            "Pick-to-light",
            "Shrink wrapping",
        ),
        ((OSHA_10, 0.10), (ORDER_PICKER, 0.08)),
    ),
    Role(
        "Loader",
        5.0,
        17.00,
        2.0,
        (
            "Truck loading",
            "Trailer unloading",
            "Heavy lifting (50+ lbs)",
            "Pallet jack",
            "Load securing",
            "Freight handling",
            "Conveyor operation",
            "Stacking",
        ),
        ((OSHA_10, 0.12), (FORKLIFT, 0.10)),
    ),
    Role(
        "Material Handler",
        6.0,
        17.75,
        2.5,
        (
            "Pallet jack",
            "Material staging",
            "Line feeding",
            "Forklift operation",
            "Kanban replenishment",
            "RF scanning",
            "Inventory control",
            "Loading and unloading",
            "Cycle counting",
        ),
        ((FORKLIFT, 0.45), (OSHA_10, 0.30), (REACH_TRUCK, 0.08)),
    ),
    Role(
        "Shipping Clerk",
        2.5,
        18.00,
        3.0,
        (
            "Bills of lading",
            "Shipping software (UPS WorldShip)",
            "Carrier coordination",
            "Freight scheduling",
            "Packing slips",
            "Data entry",
            "WMS software",
            "Inventory control",
            "Microsoft Excel",
        ),
        ((FORKLIFT, 0.20), (OSHA_10, 0.15), (MOS, 0.05)),
    ),
    Role(
        "Receiving Clerk",
        2.5,
        18.00,
        3.0,
        (
            "Receiving and put-away",
            "Purchase order reconciliation",
            "RF scanning",
            "Damage inspection",
            "Data entry",
            "WMS software",
            "Inventory control",
            "Cycle counting",
            "Microsoft Excel",
        ),
        ((FORKLIFT, 0.25), (OSHA_10, 0.15)),
    ),
    Role(
        "General Laborer",
        8.0,
        16.50,
        2.5,
        (
            "Heavy lifting (50+ lbs)",
            "Hand tools",
            "Power tools",
            "Site cleanup",
            "Material handling",
            "Demolition",
            "Concrete work",
            "Loading and unloading",
            "Landscaping",
            "Flagging",
        ),
        ((OSHA_10, 0.35), (OSHA_30, 0.05), (FLAGGER, 0.10), (FIRST_AID, 0.10)),
    ),
    Role(
        "Production Worker",
        7.0,
        17.00,
        2.5,
        (
            "Assembly line",
            "Machine tending",
            "Packaging",
            "Quality checks",
            "GMP",
            "Lean manufacturing",
            "5S",
            "Hand tools",
            "Measuring tools",
            "Food production",
        ),
        ((OSHA_10, 0.25), (FORKLIFT, 0.10)),
    ),
    Role(
        "Assembler",
        5.0,
        17.50,
        3.0,
        (
            "Mechanical assembly",
            "Hand tools",
            "Power tools",
            "Blueprint reading",
            "Electronic assembly",
            "Soldering",
            "Torque tools",
            "Wire harnessing",
            "Quality checks",
            "Calipers and micrometers",
        ),
        ((OSHA_10, 0.15), (IPC_610, 0.12), (IPC_J_STD, 0.06)),
    ),
    Role(
        "Machine Operator",
        5.0,
        19.00,
        3.5,
        (
            "Machine setup",
            "Machine tending",
            "Injection molding",
            "Press brake",
            "Punch press",
            "Calipers and micrometers",
            "Blueprint reading",
            "Lockout/tagout",
            "SPC",
            "Preventive maintenance",
        ),
        ((OSHA_10, 0.30), (FORKLIFT, 0.20), (NIMS, 0.05)),
    ),
    Role(
        "CNC Operator",
        3.0,
        23.00,
        4.0,
        (
            "CNC milling",
            "CNC lathe",
            "G-code",
            "Blueprint reading",
            "Calipers and micrometers",
            "Machine setup",
            "Fanuc controls",
            "Haas controls",
            "GD&T",
            "First article inspection",
            "Mastercam",
        ),
        ((NIMS, 0.25), (OSHA_10, 0.25)),
    ),
    Role(
        "Welder",
        3.0,
        24.00,
        4.5,
        (
            "MIG welding",
            "TIG welding",
            "Stick welding (SMAW)",
            "Flux-core welding",
            "Blueprint reading",
            "Welding symbols",
            "Metal fabrication",
            "Plasma cutting",
            "Oxy-fuel cutting",
            "Grinding",
        ),
        ((AWS_WELDER, 0.45), (OSHA_10, 0.35), (OSHA_30, 0.08)),
    ),
    Role(
        "Quality Inspector",
        2.0,
        21.00,
        4.0,
        (
            "Visual inspection",
            "Calipers and micrometers",
            "Blueprint reading",
            "First article inspection",
            "CMM",
            "GD&T",
            "SPC",
            "Nonconformance reports",
            "ISO 9001",
            "Root cause analysis",
        ),
        ((SIX_SIGMA_YELLOW, 0.20), (CQI, 0.15), (OSHA_10, 0.10)),
    ),
    Role(
        "Maintenance Technician",
        2.0,
        27.00,
        5.0,
        (
            "Electrical troubleshooting",
            "Preventive maintenance",
            "Hydraulics",
            "Pneumatics",
            "PLC troubleshooting",
            "Motor controls",
            "Welding",
            "Lockout/tagout",
            "Conveyor systems",
            "Boiler operation",
        ),
        ((OSHA_10, 0.35), (OSHA_30, 0.15), (EPA_608, 0.15), (NFPA_70E, 0.10)),
    ),
    Role(
        "Janitor/Custodian",
        3.0,
        15.50,
        3.0,
        (
            "Commercial cleaning",
            "Floor care",
            "Restroom sanitation",
            "Trash removal",
            "Floor stripping and waxing",
            "Carpet extraction",
            "Chemical handling",
            "Window cleaning",
        ),
        ((BLOODBORNE, 0.12), (OSHA_10, 0.05), (FIRST_AID, 0.05)),
    ),
    Role(
        "Delivery Driver",
        3.0,
        19.00,
        3.0,
        (
            "Route planning",
            "GPS navigation",
            "Clean driving record",
            "Cargo van",
            "Box truck",
            "Proof of delivery",
            "Customer service",
            "Lift gate operation",
            "Hand truck",
        ),
        ((DOT_MEDICAL, 0.35), (CDL_B, 0.12), (FIRST_AID, 0.05)),
    ),
    Role(
        "CDL-A Truck Driver",
        2.5,
        29.00,
        5.0,
        (
            "Pre-trip inspection",
            "ELD logs",
            "Dry van",
            "Regional routes",
            "Over-the-road (OTR)",
            "Local routes",
            "Flatbed",
            "Reefer",
            "Tanker",
            "Load securement",
            "Backing and docking",
        ),
        ((CDL_A, 1.0), (DOT_MEDICAL, 0.95), (HAZMAT, 0.25), (TANKER, 0.20), (TWIC, 0.15)),
    ),
    Role(
        "Electrician",
        1.2,
        34.00,
        6.0,
        (
            "Commercial wiring",
            "NEC code",
            "Conduit bending",
            "Blueprint reading",
            "Residential wiring",
            "Industrial wiring",
            "Troubleshooting",
            "Motor controls",
            "Panel installation",
            "Low voltage",
        ),
        ((ELECTRICIAN_LICENSE, 0.70), (OSHA_10, 0.40), (OSHA_30, 0.25), (NFPA_70E, 0.20)),
    ),
    Role(
        "Plumber",
        0.8,
        33.00,
        6.0,
        (
            "Pipe fitting",
            "Soldering (sweating copper)",
            "PEX",
            "PVC and ABS",
            "Drain cleaning",
            "Fixture installation",
            "Water heater installation",
            "Gas lines",
            "Backflow testing",
            "Blueprint reading",
        ),
        ((PLUMBER_LICENSE, 0.65), (OSHA_10, 0.35), (OSHA_30, 0.15), (BACKFLOW, 0.15)),
    ),
    Role(
        "HVAC Technician",
        1.0,
        28.00,
        5.0,
        (
            "Refrigeration",
            "Troubleshooting",
            "Heat pumps",
            "Furnace repair",
            "Brazing",
            "Ductwork",
            "Residential HVAC",
            "Commercial HVAC",
            "Air balancing",
            "Controls",
        ),
        ((EPA_608, 0.85), (NATE, 0.30), (OSHA_10, 0.30)),
    ),
    Role(
        "Carpenter",
        1.0,
        26.00,
        5.5,
        (
            "Framing",
            "Finish carpentry",
            "Power tools",
            "Blueprint reading",
            "Drywall",
            "Trim work",
            "Concrete forming",
            "Cabinet installation",
            "Door and window installation",
            "Roofing",
        ),
        ((OSHA_10, 0.45), (OSHA_30, 0.12), (EPA_RRP, 0.12), (NCCER, 0.10)),
    ),
    Role(
        "CNA (Certified Nursing Assistant)",
        2.5,
        19.00,
        3.5,
        (
            "Activities of daily living (ADLs)",
            "Vital signs",
            "Patient transfers",
            "Patient hygiene",
            "Charting (EMR)",
            "Infection control",
            "Feeding assistance",
            "Dementia care",
            "Hoyer lift",
        ),
        ((CNA_LICENSE, 1.0), (CPR_BLS, 0.85), (BLOODBORNE, 0.20), (FIRST_AID, 0.20)),
    ),
    Role(
        "Medical Assistant",
        1.5,
        20.00,
        3.5,
        (
            "Vital signs",
            "Patient intake",
            "EMR (Epic)",
            "Injections",
            "Venipuncture",
            "Medical terminology",
            "Scheduling",
            "Insurance verification",
            "EKG",
            "Specimen collection",
        ),
        ((CMA, 0.55), (RMA, 0.10), (CPT, 0.15), (CPR_BLS, 0.80)),
    ),
    Role(
        "Dental Assistant",
        0.8,
        21.50,
        3.5,
        (
            "Chairside assisting",
            "Dental X-rays",
            "Sterilization",
            "Infection control",
            "Impressions",
            "Patient prep",
            "Four-handed dentistry",
            "Dental software (Dentrix)",
            "Scheduling",
        ),
        ((RDA, 0.40), (DENTAL_XRAY, 0.70), (CPR_BLS, 0.80)),
    ),
    Role(
        "Phlebotomist",
        0.8,
        20.50,
        3.5,
        (
            "Venipuncture",
            "Capillary puncture",
            "Specimen processing",
            "Patient identification",
            "Infection control",
            "Pediatric draws",
            "Chain of custody",
            "Lab information systems",
        ),
        ((CPT, 0.85), (CPR_BLS, 0.60), (BLOODBORNE, 0.30)),
    ),
    Role(
        "Home Health Aide",
        2.0,
        16.50,
        3.0,
        (
            "Personal care",
            "Activities of daily living (ADLs)",
            "Companionship",
            "Meal preparation",
            "Medication reminders",
            "Light housekeeping",
            "Mobility assistance",
            "Dementia care",
            "Vital signs",
        ),
        ((HHA_CERT, 0.75), (CPR_BLS, 0.70), (FIRST_AID, 0.30)),
    ),
    Role(
        "Customer Service Representative",
        3.0,
        18.50,
        3.0,
        (
            "Inbound calls",
            "CRM (Salesforce)",
            "Complaint resolution",
            "Order entry",
            "Outbound calls",
            "Live chat support",
            "Data entry",
            "Typing (45+ WPM)",
            "Bilingual (English/Spanish)",
            "Microsoft Office",
        ),
        ((MOS, 0.10),),
    ),
    Role(
        "Administrative Assistant",
        1.5,
        20.00,
        4.0,
        (
            "Microsoft Office",
            "Calendar management",
            "Data entry",
            "Reception",
            "Filing",
            "Correspondence",
            "Typing (60+ WPM)",
            "QuickBooks",
            "Travel arrangements",
            "Google Workspace",
        ),
        ((MOS, 0.20), (CAP, 0.05)),
    ),
    Role(
        "Data Entry Clerk",
        1.5,
        17.50,
        2.5,
        (
            "Typing (60+ WPM)",
            "10-key",
            "Microsoft Excel",
            "Data verification",
            "Attention to detail",
            "Document scanning",
            "Records management",
            "ERP software",
        ),
        ((MOS, 0.10),),
    ),
    Role(
        "Line Cook",
        1.5,
        17.00,
        3.5,
        (
            "Prep cooking",
            "Grill",
            "Sauté",
            "Fry station",
            "Knife skills",
            "Food safety",
            "High-volume kitchen",
            "Plating",
            "Inventory rotation (FIFO)",
        ),
        ((SERVSAFE, 0.70), (SERVSAFE_MANAGER, 0.10)),
    ),
    Role(
        "Dishwasher",
        1.0,
        15.00,
        2.0,
        (
            "Commercial dishwasher",
            "Pot washing",
            "Sanitation",
            "Kitchen cleaning",
            "Chemical handling",
            "Prep assistance",
            "Trash removal",
        ),
        ((SERVSAFE, 0.35),),
    ),
    Role(
        "Security Guard",
        2.0,
        17.50,
        3.5,
        (
            "Access control",
            "Patrol",
            "Report writing",
            "CCTV monitoring",
            "Customer service",
            "Emergency response",
            "Loss prevention",
            "Radio communication",
            "Crowd control",
        ),
        ((GUARD_LICENSE, 0.85), (CPR_BLS, 0.35), (FIRST_AID, 0.35)),
    ),
)

CERTIFICATIONS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(cert for role in ROLES for cert, _ in role.certifications)
)


# --- cities -------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    """A real US city: rough population (thousands), its area codes and one of its ZIP codes."""

    name: str
    state: str
    population_k: int
    area_codes: tuple[str, ...]
    zip: str


# "<city> <state> <population, thousands> <area codes, /-separated> <zip>", parsed from the
# right so city names may contain spaces.
_CITY_TABLE: Final = """
Chicago IL 2700 312/773/872 60601
Aurora IL 180 630/331 60505
Joliet IL 150 815/779 60432
Naperville IL 150 630/331 60540
Rockford IL 148 815/779 61101
Elgin IL 114 847/224 60120
Springfield IL 114 217/447 62701
Peoria IL 113 309 61602
Waukegan IL 89 847/224 60085
Champaign IL 88 217/447 61820
Cicero IL 85 708 60804
Bloomington IL 78 309 61701
Schaumburg IL 78 847/224 60173
Bolingbrook IL 74 630/331 60440
Decatur IL 70 217/447 62521
Indianapolis IN 880 317/463 46204
Fort Wayne IN 265 260 46802
Evansville IN 117 812/930 47708
South Bend IN 103 574 46601
Hammond IN 77 219 46320
Lafayette IN 70 765 47901
Gary IN 69 219 46402
Columbus OH 905 614/380 43215
Cleveland OH 372 216 44113
Cincinnati OH 309 513 45202
Toledo OH 270 419/567 43604
Akron OH 190 330/234 44308
Dayton OH 137 937 45402
Youngstown OH 60 330/234 44503
Detroit MI 639 313 48226
Grand Rapids MI 198 616 49503
Warren MI 139 586 48089
Sterling Heights MI 134 586 48310
Ann Arbor MI 123 734 48104
Lansing MI 112 517 48933
Flint MI 81 810 48502
Kalamazoo MI 73 269 49007
Milwaukee WI 577 414 53202
Madison WI 269 608 53703
Green Bay WI 107 920 54301
Kenosha WI 99 262 53140
Racine WI 77 262 53403
Minneapolis MN 429 612 55401
Saint Paul MN 311 651 55102
Rochester MN 121 507 55901
Kansas City MO 508 816 64105
St. Louis MO 301 314 63101
Springfield MO 169 417 65806
Louisville KY 622 502 40202
Lexington KY 322 859 40507
Nashville TN 689 615/629 37203
Memphis TN 633 901 38103
Knoxville TN 190 865 37902
Chattanooga TN 181 423 37402
Houston TX 2300 713/281/832 77002
San Antonio TX 1430 210 78205
Dallas TX 1300 214/469/972 75201
Austin TX 960 512/737 78701
Fort Worth TX 920 817/682 76102
El Paso TX 680 915 79901
Arlington TX 395 817/682 76010
Corpus Christi TX 317 361 78401
Plano TX 285 972/469/214 75074
Lubbock TX 258 806 79401
Laredo TX 256 956 78040
Irving TX 255 972/469/214 75061
Garland TX 246 972/469/214 75040
Amarillo TX 200 806 79101
Atlanta GA 499 404/470/678 30303
Columbus GA 206 706/762 31901
Augusta GA 202 706/762 30901
Macon GA 157 478 31201
Savannah GA 147 912 31401
Charlotte NC 875 704/980 28202
Raleigh NC 467 919/984 27601
Greensboro NC 299 336/743 27401
Durham NC 284 919/984 27701
Winston-Salem NC 250 336/743 27101
Fayetteville NC 208 910 28301
Charleston SC 150 843/854 29401
Columbia SC 136 803/839 29201
Greenville SC 70 864 29601
Jacksonville FL 950 904 32202
Miami FL 442 305/786 33131
Tampa FL 385 813/656 33602
Orlando FL 307 407/689 32801
St. Petersburg FL 258 727 33701
Hialeah FL 223 305/786 33010
Fort Lauderdale FL 182 954/754 33301
Lakeland FL 112 863 33801
Huntsville AL 215 256/938 35801
Birmingham AL 200 205/659 35203
Montgomery AL 200 334 36104
Mobile AL 187 251 36602
Philadelphia PA 1600 215/267/445 19107
Pittsburgh PA 303 412/878 15222
Allentown PA 125 610/484 18101
Reading PA 95 610/484 19601
Erie PA 94 814 16501
Lancaster PA 58 717/223 17603
New York NY 8300 212/718/917/646/347 10001
Buffalo NY 278 716 14202
Rochester NY 211 585 14604
Syracuse NY 148 315/680 13202
Albany NY 99 518/838 12207
Newark NJ 305 973/862 07102
Jersey City NJ 290 201/551 07302
Paterson NJ 157 973/862 07505
Elizabeth NJ 135 908 07201
Edison NJ 107 732/848 08817
Baltimore MD 570 410/443/667 21202
Virginia Beach VA 455 757 23451
Chesapeake VA 250 757 23320
Norfolk VA 235 757 23510
Richmond VA 228 804 23219
Boston MA 650 617/857 02108
Worcester MA 206 508/774 01608
Springfield MA 155 413 01103
Bridgeport CT 148 203/475 06604
New Haven CT 135 203/475 06510
Hartford CT 120 860/959 06103
Phoenix AZ 1650 602/480/623 85003
Tucson AZ 545 520 85701
Mesa AZ 505 480 85201
Chandler AZ 275 480 85225
Glendale AZ 250 623 85301
Tempe AZ 185 480 85281
Las Vegas NV 660 702/725 89101
Henderson NV 320 702/725 89002
Reno NV 265 775 89501
Denver CO 715 303/720 80202
Colorado Springs CO 480 719 80903
Aurora CO 386 303/720 80010
Salt Lake City UT 200 801/385 84101
West Valley City UT 135 801/385 84119
Provo UT 115 801/385 84601
Albuquerque NM 560 505 87102
Oklahoma City OK 690 405 73102
Tulsa OK 413 918/539 74103
Wichita KS 397 316 67202
Kansas City KS 155 913 66101
Omaha NE 486 402/531 68102
Lincoln NE 292 402/531 68508
Des Moines IA 214 515 50309
Cedar Rapids IA 137 319 52401
Davenport IA 101 563 52801
New Orleans LA 383 504 70112
Baton Rouge LA 227 225 70801
Shreveport LA 187 318 71101
Little Rock AR 203 501 72201
Jackson MS 153 601/769 39201
Los Angeles CA 3900 213/323/310 90012
San Diego CA 1390 619/858 92101
San Jose CA 1000 408/669 95113
Fresno CA 545 559 93721
Sacramento CA 525 916/279 95814
Long Beach CA 460 562 90802
Oakland CA 440 510/341 94612
Bakersfield CA 405 661 93301
Anaheim CA 345 714/657 92805
Stockton CA 320 209/350 95202
Riverside CA 315 951 92501
San Bernardino CA 222 909/840 92401
Fontana CA 210 909 92335
Ontario CA 175 909 91761
Seattle WA 750 206/564 98101
Spokane WA 228 509 99201
Tacoma WA 219 253 98402
Kent WA 136 253 98032
Portland OR 650 503/971 97204
Salem OR 175 503/971 97301
Boise ID 235 208/986 83702
"""


def _parse_cities(table: str) -> tuple[City, ...]:
    cities = []
    for line in table.strip().splitlines():
        name, state, population, codes, zip_code = line.rsplit(maxsplit=4)
        cities.append(City(name, state, int(population), tuple(codes.split("/")), zip_code))
    return tuple(cities)


CITIES: Final[tuple[City, ...]] = _parse_cities(_CITY_TABLE)

# Population is tempered (population ** 0.75) so that New York and Los Angeles do not drown the
# Midwest metros where light-industrial staffing concentrates.
CITY_WEIGHT_EXPONENT: Final = 0.75

# Two-letter code -> full name, for every state and DC.
STATE_NAMES: Final = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
}

# Relative pay level by state (1.0 = national); states not listed pay the national level.
STATE_PAY: Final = {
    "CA": 1.18,
    "WA": 1.14,
    "MA": 1.14,
    "NY": 1.14,
    "NJ": 1.10,
    "CT": 1.08,
    "OR": 1.07,
    "CO": 1.06,
    "MD": 1.05,
    "MN": 1.04,
    "IL": 1.03,
    "NV": 1.02,
    "AZ": 1.01,
    "IN": 0.97,
    "OH": 0.97,
    "MO": 0.96,
    "KY": 0.95,
    "TN": 0.95,
    "OK": 0.94,
    "SC": 0.94,
    "LA": 0.94,
    "AL": 0.93,
    "AR": 0.92,
    "MS": 0.91,
}


# --- availability and email ---------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    """One value of the ``availability`` column and whether it means ``available``."""

    label: str
    available: bool
    weight: float


AVAILABILITY: Final[tuple[Availability, ...]] = (
    Availability("immediate", True, 0.30),
    Availability("1 week", False, 0.10),
    Availability("2 weeks", False, 0.14),
    Availability("30 days", False, 0.05),
    Availability("weekends only", True, 0.07),
    Availability("nights only", True, 0.06),
    Availability("part-time only", True, 0.08),
    Availability("on assignment", False, 0.20),
)

# RFC 2606 reserved domains: mail to them never reaches anyone.
EMAIL_DOMAINS: Final[tuple[tuple[str, float], ...]] = (
    ("example.com", 0.60),
    ("example.org", 0.25),
    ("example.net", 0.15),
)

# NANP reserves 555-0100..555-0199 for fictional use; only the last two digits vary.
PHONE_EXCHANGE: Final = "555-01"


# --- names --------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES: Final[tuple[str, ...]] = _words(
    """
    James John Robert Michael William David Richard Joseph Thomas Christopher Charles Daniel
    Matthew Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy
    Ronald Jason Edward Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin
    Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry
    Tyler Aaron Adam Nathan Henry Zachary Douglas Peter Kyle Noah Ethan Jeremy Walter
    Christian Keith Roger Terry Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jordan
    Jesse Bryan Billy Bruce Gabriel Logan Alan Albert Willie Elijah Wayne Randy Vincent Mason
    Roy Ralph Bobby Russell Bradley Philip Eugene Travis Curtis Shawn Derek Troy
    Jose Luis Carlos Juan Miguel Jorge Alejandro Diego Ricardo Fernando Javier Manuel Pedro
    Rafael Eduardo Hector Marco Ramon Andres Julio Sergio Mateo Santiago Angel Francisco
    Marcus Darnell Terrence Andre Jamal Tyrone DeShawn Malik Jerome Reginald Cedric Lamar
    Darius Xavier Isaiah Trevon Jermaine Dante Kendrick Rashad
    Wei Jun Hao Tao Hiroshi Kenji Takeshi Minh Tuan Hung Duc Bao Jin Hyun Sung Min
    Sanjay Rahul Vikram Arjun Raj Amit Ravi Suresh Anil Deepak
    Ahmed Mohammed Ali Hassan Omar Yusuf Tariq Karim Samir Khalid
    Ivan Dmitri Sergei Nikolai Piotr Tomasz Andrzej Marek Stefan Bogdan
    Luca Giovanni Emeka Chinedu Kwame Kofi Obinna Tunde Abdi
    Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty
    Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah
    Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma
    Nicole Helen Samantha Katherine Christine Debra Rachel Carolyn Janet Catherine Maria
    Heather Diane Ruth Julie Olivia Joyce Virginia Victoria Kelly Lauren Christina Joan Evelyn
    Judith Megan Andrea Cheryl Hannah Jacqueline Martha Gloria Teresa Ann Sara Madison Frances
    Kathryn Janice Jean Abigail Alice Judy Sophia Grace Denise Amber Doris Marilyn Danielle
    Beverly Isabella Theresa Diana Natalie Brittany Charlotte Marie Kayla Alexis Lori Tiffany
    Crystal Erica Tara Wendy
    Rosa Guadalupe Carmen Ana Sofia Valeria Lucia Gabriela Daniela Alejandra Mariana Yesenia
    Veronica Leticia Adriana Claudia Elena Marisol Ximena Paola Esperanza Beatriz Lourdes
    Latoya Keisha Tamika Aaliyah Imani Jasmine Ebony Shanice Tiana Monique Precious Latasha
    Shaniqua Destiny Kiara Nia
    Mei Ling Xiu Yan Yuki Aiko Keiko Linh Hoa Thuy Lan Mai Ji-woo Min-ji Soo-jin Eun-ji
    Priya Anjali Deepa Sunita Neha Pooja Kavita Lakshmi
    Fatima Aisha Layla Zainab Amina Noor Yasmin Leila
    Olga Natalia Svetlana Agnieszka Katarzyna Magdalena Irina Oksana
    Ngozi Amara Chioma Adaeze Abena Fola
    """
)

# Roughly in order of US frequency (common surnames first; weights decay with position), then
# a tail that keeps the roster diverse.
LAST_NAMES: Final[tuple[str, ...]] = _words(
    """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
    Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
    Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
    Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
    Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook
    Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
    Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez
    Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
    Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson
    Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera
    Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
    Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker
    Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason
    Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox
    Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan
    Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos
    Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews
    Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards Contreras Willis
    Carpenter Lawrence Sandoval Guerrero George Chapman Rios Estrada Ortega Watkins Greene
    Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison Franklin Carlson
    Austin Dominguez Carr Lawson Jacobs O'Brien Lynch Singh Vega Bishop Montgomery Oliver
    Jensen Harvey Williamson Gilbert Dean Sims Espinoza Howell Li Wong Reid Hanson Le McCoy
    Garrett Burton Fuller Wang Weber Welch Rojas Lucas Marquez Fields Park Yang Little Banks
    Padilla Day Walsh Bowman Schultz Luna Fowler Mejia Davidson Acosta Brewer Holland Juarez
    Newman Pearson Curtis Cortez Douglas Schneider Joseph Barrett Navarro Figueroa Keller
    Avila Wade Molina Stanley Hopkins Campos Barnett Bates Chambers Caldwell Beck Lambert
    Miranda Byrd Craig Ayala Lowe Frazier Powers Neal Leonard Gregory Carrillo Sutton Fleming
    Kowalski Nowak Wisniewski Novak Petrov Ivanov Popescu Yilmaz Haddad Khan Ahmed Hussain
    Rahman Shah Gupta Sharma Kumar Reddy Das Okafor Adeyemi Mensah Okonkwo Nwosu Tanaka
    Suzuki Watanabe Yamamoto Nakamura Zhang Liu Huang Zhao Wu Zhou Xu Pham Hoang Vu Dang Bui
    Choi Jung Kang Cho Yoon Oliveira Costa Pereira Ferreira Rossi Russo Romano Ricci O'Connor
    Gallagher Doyle Muller Fischer Schulz Johansson Nielsen Lindgren Abubakar Mohamud
    """
)
